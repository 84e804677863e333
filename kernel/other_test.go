package kernel

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ringfence/ringfence/internal/vm/vmtest"
)

// exportedFuncs returns the exported functions and methods declared in
// files, as "Recv.Name(params) results" with the types as written.
func exportedFuncs(t *testing.T, files []string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, file := range files {
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() {
				continue
			}
			name := fd.Name.Name
			if fd.Recv != nil {
				var b bytes.Buffer
				printer.Fprint(&b, fset, fd.Recv.List[0].Type)
				recv := strings.TrimPrefix(b.String(), "*")
				if !ast.IsExported(recv) {
					continue
				}
				name = recv + "." + name
			}
			// Parameter names differ; compare the types only.
			var sig []string
			for _, fl := range []*ast.FieldList{fd.Type.Params, fd.Type.Results} {
				var types []string
				if fl != nil {
					for _, p := range fl.List {
						var b bytes.Buffer
						printer.Fprint(&b, fset, p.Type)
						for range max(1, len(p.Names)) {
							types = append(types, b.String())
						}
					}
				}
				sig = append(sig, "("+strings.Join(types, ", ")+")")
			}
			out[name] = strings.Join(sig, " ")
		}
	}
	return out
}

// TestOtherMatchesLinux checks that other.go, the package on systems other
// than Linux, declares exactly the exported functions and methods of the
// Linux files, with the same types, so code that builds on Linux builds
// everywhere (and every call there reports ErrNeedsLinux).
func TestOtherMatchesLinux(t *testing.T) {
	if vmtest.InVM() {
		t.Skip("reads the package's source files, which the VM does not hold; runs on the host")
	}
	linux, err := filepath.Glob("*_linux.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range linux {
		if !strings.HasSuffix(f, "_test.go") {
			files = append(files, f)
		}
	}
	want := exportedFuncs(t, files)
	got := exportedFuncs(t, []string{"other.go"})
	var names []string
	for n := range want {
		names = append(names, n)
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if want[n] != got[n] {
			t.Errorf("%s: Linux %q, other.go %q", n, want[n], got[n])
		}
	}
}
