package apptest

import (
	"os"
	"strings"
	"testing"
	"time"
)

// nodeScript exercises Node.js's event loop with UV_USE_IO_URING=1.
// Traced in the VM (Node 24), libuv then batches its epoll_ctl calls as
// io_uring EPOLL_CTL requests, and submits nothing else: the asynchronous
// file operations (open, write, read, stat, rename, unlink) run on its
// thread pool as system calls. Part "file" runs the file operations, part
// "tcp" a TCP echo over loopback; each prints one result line.
const nodeScript = `
const fsp = require('fs/promises');
const net = require('net');
async function file() {
  const dir = await fsp.mkdtemp('/tmp/node-');
  const a = dir + '/a', b = dir + '/b';
  const fh = await fsp.open(a, 'w');
  await fh.write('hello io_uring');
  await fh.close();
  await fsp.rename(a, b);
  const st = await fsp.stat(b);
  const data = await fsp.readFile(b, 'utf8');
  await fsp.unlink(b);
  await fsp.rmdir(dir);
  console.log('file ok', st.size, data);
}
function tcp() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer(c => c.pipe(c));
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const c = net.connect(srv.address().port, '127.0.0.1', () => c.write('ping over loopback'));
      c.on('error', reject);
      let got = '';
      c.on('data', d => {
        got += d;
        if (got.length >= 18) { c.end(); srv.close(); console.log('tcp ok', got); resolve(); }
      });
    });
  });
}
const part = process.argv[2];
(part === 'file' ? file() : tcp()).catch(e => { console.log(part + ' error', e.code, e.message); process.exit(3); });
`

// TestNode runs Node.js with UV_USE_IO_URING=1: the file operations and
// the TCP echo work unconfined and under default, storage and
// network-server, which all allow EPOLL_CTL (the file operations are
// system calls, so network-server's rule against file creation through
// io_uring does not reach them). Under deny-all libuv's first batched
// EPOLL_CTL fails and libuv aborts the process (SIGABRT), which is how it
// reports a failed io_uring request on its event loop: Node dies at once
// instead of hanging.
func TestNode(t *testing.T) {
	script := "/tmp/ringfence-node-test.js"
	if err := os.WriteFile(script, []byte(nodeScript), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"UV_USE_IO_URING=1"}
	tests := []struct {
		profile, part string
		want          string // in the output
		ok            bool   // exit 0
	}{
		{unconfined, "file", "file ok 14 hello io_uring", true},
		{unconfined, "tcp", "tcp ok ping over loopback", true},
		{"default", "file", "file ok 14 hello io_uring", true},
		{"default", "tcp", "tcp ok ping over loopback", true},
		{"storage", "file", "file ok 14 hello io_uring", true},
		{"storage", "tcp", "tcp ok ping over loopback", true},
		{"network-server", "tcp", "tcp ok ping over loopback", true},
		{"network-server", "file", "file ok 14 hello io_uring", true},
	}
	for _, tt := range tests {
		t.Run(tt.profile+"/"+tt.part, func(t *testing.T) {
			needFilters(t, tt.profile)
			r := runCmd(t, 2*time.Minute, env, under(tt.profile, "node", script, tt.part)...)
			if r.timedOut || (r.exit == 0) != tt.ok || !strings.Contains(r.out, tt.want) {
				t.Errorf("want exit ok=%v and %q: %s", tt.ok, tt.want, r)
			}
		})
	}
	for _, part := range []string{"file", "tcp"} {
		t.Run("deny-all/"+part, func(t *testing.T) {
			needFilters(t, "deny-all")
			r := runCmd(t, 2*time.Minute, env, under("deny-all", "node", script, part)...)
			if r.timedOut || r.exit == 0 {
				t.Fatalf("node under deny-all succeeded or hung: %s", r)
			}
			if !strings.Contains(r.signal, "abort") {
				t.Errorf("node did not abort: %s", r)
			}
		})
	}
}
