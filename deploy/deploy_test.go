package deploy

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	nriplugin "github.com/containerd/nri/pkg/plugin"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/internal/ocifence"
)

// decode decodes every document of a manifest strictly (unknown or
// duplicate fields are errors) into the Kubernetes type its kind names.
func decode(t *testing.T, file string) []any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var objs []any
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: document %d: %v", file, i+1, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "node.k8s.io/v1 RuntimeClass":
			obj = &nodev1.RuntimeClass{}
		case "apps/v1 DaemonSet":
			obj = &appsv1.DaemonSet{}
		case "v1 Pod":
			obj = &corev1.Pod{}
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		default:
			t.Fatalf("%s: document %d: unexpected %s %s", file, i+1, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s: document %d (%s): %v", file, i+1, tm.Kind, err)
		}
		objs = append(objs, obj)
	}
	return objs
}

// TestManifestsDecodeStrictly decodes every manifest, and fails on a
// field the Kubernetes API does not have.
func TestManifestsDecodeStrictly(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	if len(files) < 4 {
		t.Fatalf("manifests: %q", files)
	}
	for _, f := range files {
		decode(t, f)
	}
	// The strict decoder does catch a misspelt field.
	tmp := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(tmp, []byte("apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: x\nhandlr: x\n"), 0o644)
	var rc nodev1.RuntimeClass
	data, _ := os.ReadFile(tmp)
	if err := yaml.UnmarshalStrict(data, &rc); err == nil || !strings.Contains(err.Error(), "handlr") {
		t.Errorf("a misspelt field decoded: %v", err)
	}
}

// TestRuntimeClassMatchesContainerd: the RuntimeClass's handler is the
// runtime the containerd snippet defines, whose binary is
// ringfence-runtime, and which passes the ringfence annotations through.
func TestRuntimeClassMatchesContainerd(t *testing.T) {
	rc := decode(t, "runtimeclass.yaml")[0].(*nodev1.RuntimeClass)
	toml, err := os.ReadFile("containerd-ringfence.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(toml)
	for _, want := range []string{
		"[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes." + rc.Handler + "]",
		`runtime_type = "io.containerd.runc.v2"`,
		`pod_annotations = ["org.ringfence.*"]`,
		`BinaryName = "/usr/local/bin/ringfence-runtime"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("containerd-ringfence.toml lacks %s", want)
		}
	}
	if !strings.HasPrefix(ocifence.PolicyKey, "org.ringfence.") || !strings.HasPrefix(ocifence.IfSupportedKey, "org.ringfence.") {
		t.Error("an annotation key is not under org.ringfence.*, so containerd would not pass it")
	}
	if filepath.Base(regexp.MustCompile(`BinaryName = "([^"]+)"`).FindStringSubmatch(s)[1]) != "ringfence-runtime" {
		t.Error("BinaryName is not ringfence-runtime")
	}
}

// daemonSet returns the DaemonSet and the ConfigMaps of nri-daemonset.yaml.
func daemonSet(t *testing.T) (*appsv1.DaemonSet, map[string]*corev1.ConfigMap) {
	t.Helper()
	var ds *appsv1.DaemonSet
	cms := map[string]*corev1.ConfigMap{}
	for _, o := range decode(t, "nri-daemonset.yaml") {
		switch o := o.(type) {
		case *appsv1.DaemonSet:
			ds = o
		case *corev1.ConfigMap:
			cms[o.Namespace+"/"+o.Name] = o
		default:
			t.Fatalf("nri-daemonset.yaml: unexpected %T", o)
		}
	}
	if ds == nil {
		t.Fatal("nri-daemonset.yaml has no DaemonSet")
	}
	return ds, cms
}

// pluginFlag returns the value of the plugin's --name=VALUE argument.
func pluginFlag(t *testing.T, c corev1.Container, name string) string {
	t.Helper()
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	t.Fatalf("no --%s", name)
	return ""
}

// TestDaemonSet: the plugin's flags and the host paths agree, so the
// binary and the policies it mounts exist on the node at those paths; the
// trusted policy directory (--policies) is a read-only mount of a
// ConfigMap the manifest ships, so annotations can name its files.
func TestDaemonSet(t *testing.T) {
	ds, cms := daemonSet(t)
	spec := ds.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	if len(c.Args) < 2 || c.Args[0] != "/ringfence" || c.Args[1] != "nri" || !slices.Contains(c.Args, "--install") {
		t.Fatalf("args %q: want /ringfence nri --install ...", c.Args)
	}
	flag := func(name string) string { return pluginFlag(t, c, name) }
	hostPath := map[string]string{}
	configMap := map[string]string{}
	for _, v := range spec.Volumes {
		switch {
		case v.HostPath != nil:
			hostPath[v.Name] = v.HostPath.Path
		case v.ConfigMap != nil:
			configMap[v.Name] = v.ConfigMap.Name
		default:
			t.Fatalf("volume %s is neither a hostPath nor a ConfigMap", v.Name)
		}
	}
	mounted := func(path string) {
		t.Helper()
		for _, m := range c.VolumeMounts {
			if (path == m.MountPath || strings.HasPrefix(path, m.MountPath+"/")) && hostPath[m.Name] == m.MountPath {
				return
			}
		}
		t.Errorf("%s is not on a hostPath mounted at the same path", path)
	}
	mounted(flag("binary"))
	mounted(flag("policy-dir"))
	mounted(flag("socket"))
	policies, found := flag("policies"), false
	for _, m := range c.VolumeMounts {
		if m.MountPath != policies {
			continue
		}
		found = true
		cm, ok := cms[ds.Namespace+"/"+configMap[m.Name]]
		if !ok || !m.ReadOnly || m.SubPath != "" {
			t.Errorf("--policies=%s: mount %+v; want a read-only mount of a ConfigMap of the manifest, in %s (ConfigMaps: %v)", policies, m, ds.Namespace, slices.Collect(maps.Keys(cms)))
		} else if len(cm.Data) == 0 {
			t.Errorf("ConfigMap %s holds no policy", cm.Name)
		}
	}
	if !found {
		t.Errorf("--policies=%s is not mounted: every policy file annotations name would be refused", policies)
	}
	if c.SecurityContext == nil || c.SecurityContext.SeccompProfile == nil || c.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined {
		t.Error("the plugin must be able to probe io_uring (Unconfined seccomp, as its comment says)")
	}
}

// TestPolicyConfigMap lays the policy ConfigMap out as the kubelet
// mounts one (each key a symbolic link to ..data/KEY, ..data a link to a
// timestamped directory) and resolves each key as an annotation naming
// it: the trusted directory's rules (links must stay inside it) accept
// this layout, and every shipped policy is valid.
func TestPolicyConfigMap(t *testing.T) {
	ds, cms := daemonSet(t)
	var cm *corev1.ConfigMap
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			cm = cms[ds.Namespace+"/"+v.ConfigMap.Name]
		}
	}
	if cm == nil {
		t.Fatal("no policy ConfigMap")
	}
	dir := t.TempDir()
	const stamp = "..2026_11_30_23_59_59.000000001"
	if err := os.Mkdir(filepath.Join(dir, stamp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(stamp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for k, v := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, stamp, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k)); err != nil {
			t.Fatal(err)
		}
	}
	for k := range cm.Data {
		for _, name := range []string{k, filepath.Join(dir, k)} {
			p, _, err := ringfence.ResolvePolicyValue(name, "annotation "+ocifence.PolicyKey, dir)
			if err != nil || p == nil {
				t.Errorf("ConfigMap key %s named as %q: %v", k, name, err)
			}
		}
	}
}

// TestExamplePods: the example pods name PostgreSQL 18 with io_uring,
// keep RuntimeDefault, and carry annotations ringfence understands.
func TestExamplePods(t *testing.T) {
	for _, f := range []string{"postgres-runtimeclass.yaml", "postgres-nri.yaml"} {
		pod := decode(t, f)[0].(*corev1.Pod)
		if sc := pod.Spec.SecurityContext; sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: not RuntimeDefault", f)
		}
		pg := pod.Spec.Containers[0]
		if pg.Image != "postgres:18" || !slices.Equal(pg.Args, []string{"-c", "io_method=io_uring"}) {
			t.Errorf("%s: container %s %q", f, pg.Image, pg.Args)
		}
		found := false
		for _, c := range pod.Spec.Containers {
			choice, ok, err := ocifence.Choose(pod.Annotations, c.Name)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if !ok {
				continue
			}
			found = found || c.Name == "postgres"
			if _, _, err := ringfence.ResolvePolicyValue(choice.Value, choice.Key, "."); err != nil {
				t.Errorf("%s: %s: %v", f, c.Name, err)
			}
		}
		if !found {
			t.Errorf("%s: the postgres container is not fenced", f)
		}
		if pod.Spec.RuntimeClassName != nil && *pod.Spec.RuntimeClassName != "ringfence" {
			t.Errorf("%s: runtimeClassName %s", f, *pod.Spec.RuntimeClassName)
		}
		// The NRI example requires the plugin, by the name the DaemonSet
		// gives it, so it is refused rather than started unfenced while
		// the plugin is down (NRI's default validator reads this key).
		if pod.Spec.RuntimeClassName == nil {
			ds, _ := daemonSet(t)
			name := pluginFlag(t, ds.Spec.Template.Spec.Containers[0], "name")
			var required []string
			v, ok := pod.Annotations[nriplugin.RequiredPluginsAnnotation+"/pod"]
			if err := yaml.Unmarshal([]byte(v), &required); !ok || err != nil || !slices.Contains(required, name) {
				t.Errorf("%s: annotation %s/pod is %q (%v): want a list with %q", f, nriplugin.RequiredPluginsAnnotation, v, err, name)
			}
		}
	}
}
