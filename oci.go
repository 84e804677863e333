package ringfence

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ringfence/ringfence/internal/readlimit"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/profiles"
)

// OCIAnnotation is the OCI runtime-spec annotation that carries a ringfence
// policy in a bundle's config.json, until the spec has a field for it.
const OCIAnnotation = "org.ringfence.policy"

// OCINone is the value of the org.ringfence.policy annotation that names
// no policy: the container is treated as if it had no such annotation, so
// the runtime's default, if it has one, applies (PolicyFromOCIConfig
// reports found false). ringfence-runtime and ringfence nri give it the
// same meaning, at the per-container keys too; a policy file cannot be
// named "none".
const OCINone = "none"

// DefaultPolicyDir is the trusted directory of policy files that the
// container runtimes (ringfence-runtime, ringfence nri) let annotations
// name by default. Whoever sets annotations (in Kubernetes, a pod's
// author) is not trusted with the node's files: only files in this
// directory, which the node's administrator fills, can be named.
const DefaultPolicyDir = "/etc/ringfence/policies"

// PolicyFromOCI reads the policy named by the org.ringfence.policy
// annotation of the OCI bundle in bundleDir (bundleDir/config.json).
// found is false, with a nil error, when the bundle has no such
// annotation: the runtime decides what that means (no policy, or a default
// such as Profile("default")). Policy files the annotation names must lie
// in policyDir (see PolicyFromOCIConfig).
func PolicyFromOCI(bundleDir, policyDir string) (p *policy.Policy, found bool, err error) {
	cfg := filepath.Join(bundleDir, "config.json")
	data, err := readlimit.File(cfg)
	if err != nil {
		return nil, false, err
	}
	return PolicyFromOCIConfig(data, policyDir)
}

// PolicyFromOCIConfig reads the org.ringfence.policy annotation of an OCI
// config.json. The annotation's value is one of:
//
//   - an inline policy, YAML or JSON: any value that contains a newline or
//     starts with "{";
//   - "profile:NAME", a built-in profile;
//   - otherwise the name of a policy file in the trusted directory
//     policyDir (see ResolvePolicyValue for the rules); with policyDir ""
//     no file can be named.
//
// found is false, with a nil error, when there is no such annotation or
// its value is OCINone.
func PolicyFromOCIConfig(config []byte, policyDir string) (p *policy.Policy, found bool, err error) {
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(config, &spec); err != nil {
		return nil, false, fmt.Errorf("OCI config.json: %w", err)
	}
	v, ok := spec.Annotations[OCIAnnotation]
	if !ok || strings.TrimSpace(v) == OCINone {
		return nil, false, nil
	}
	p, _, err = ResolvePolicyValue(v, "annotation "+OCIAnnotation, policyDir)
	if err != nil {
		return nil, true, err
	}
	return p, true, nil
}

// ResolvePolicyValue resolves a value of the org.ringfence.policy
// annotation (the forms of PolicyFromOCIConfig: inline YAML or JSON,
// "profile:NAME", or the name of a policy file) and returns the policy
// with the source text it was parsed from, so that a runtime can hand the
// same policy to a process inside a container. src names where the value
// came from, for errors ("annotation org.ringfence.policy").
//
// Policy files, whether the value names one or a policy extends one
// (directly or through other files), are read only from the trusted
// directory policyDir, since whoever writes the value may not be trusted
// with the files of the machine the runtime runs on: a relative name is
// resolved inside policyDir (a base's relative name against the directory
// of the file that extends it), an absolute name must lie inside it, a
// name that leaves it with ".." or through a symbolic link is refused, and
// only regular files are read (never a FIFO, a device or a directory).
// With policyDir "" every file is refused. OCINone is an error here: it
// names no policy, and the caller decides what applies instead. Errors
// name src and the rule broken.
//
// A policy that extends others (docs/policy.md, "Composition") is
// returned with its flattened text as source instead: parsed inside the
// container, a reference to a file would name the container's file, which
// the image controls, not the one checked here.
func ResolvePolicyValue(v, src, policyDir string) (p *policy.Policy, source []byte, err error) {
	trimmed := strings.TrimSpace(v)
	l := dirLoader{dir: policyDir}
	switch {
	case trimmed == "":
		return nil, nil, fmt.Errorf("%s is empty: give an inline policy, profile:NAME or the name of a file in the policy directory", src)
	case trimmed == OCINone:
		return nil, nil, fmt.Errorf("%s is %q, which names no policy: give an inline policy, profile:NAME or the name of a file in the policy directory, or leave it out", src, OCINone)
	case strings.Contains(trimmed, "\n") || strings.HasPrefix(trimmed, "{"):
		source = []byte(v)
		p, err = policy.ParseWith(source, src, l)
	case strings.HasPrefix(trimmed, "profile:"):
		name := strings.TrimPrefix(trimmed, "profile:")
		source, err = profiles.Get(name)
		if err == nil {
			p, err = ParsePolicy(source, "profile "+name)
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", src, err)
		}
	default:
		var file string
		source, file, err = l.read(trimmed, "")
		if err == nil {
			p, err = policy.ParseWith(source, file, l)
		}
		if err != nil {
			err = fmt.Errorf("%s names %q: %w", src, trimmed, err)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if len(p.Extends) > 0 {
		if source, err = p.YAML(); err != nil {
			return nil, nil, fmt.Errorf("%s: writing the policy flattened: %w", src, err)
		}
	}
	return p, source, nil
}

// dirLoader finds the bases of a policy: built-in profiles as
// policy.DefaultLoader does, files only inside dir.
type dirLoader struct{ dir string }

// Load implements policy.Loader.
func (l dirLoader) Load(ref, from string) ([]byte, string, error) {
	if !policy.IsPath(ref) || strings.HasPrefix(from, "profile ") {
		return policy.DefaultLoader{}.Load(ref, from)
	}
	base := ""
	if dir, err := filepath.Abs(l.dir); err == nil && l.dir != "" && filepath.IsAbs(from) {
		if rel, err := filepath.Rel(dir, from); err == nil && filepath.IsLocal(rel) {
			base = filepath.Dir(from) // a file l.read returned
		}
	}
	return l.read(ref, base)
}

// read reads the policy file name, relative to base (dir when ""), under
// the rules of ResolvePolicyValue, and returns its contents and path.
func (l dirLoader) read(name, base string) ([]byte, string, error) {
	if l.dir == "" {
		return nil, "", fmt.Errorf("no policy directory is configured, so no policy file may be named (give an inline policy or profile:NAME)")
	}
	dir, err := filepath.Abs(l.dir)
	if err != nil {
		return nil, "", err
	}
	if base == "" {
		base = dir
	}
	path := filepath.Clean(name)
	if !filepath.IsAbs(path) {
		path = filepath.Join(base, name)
	}
	rel, err := filepath.Rel(dir, path)
	if err != nil || !filepath.IsLocal(rel) {
		return nil, "", fmt.Errorf("%s is outside the policy directory %s: only files in it may be named", path, dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, "", fmt.Errorf("%s: the policy directory cannot be opened: %w", path, err)
	}
	defer root.Close()
	// Stat first, so that a FIFO or a device is never opened; os.Root
	// refuses symbolic links and ".." that lead out of dir.
	st, err := root.Stat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("%s: no such file in the policy directory %s", path, dir)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s: refused, it must resolve inside the policy directory %s (symbolic links leading out of it are not followed): %w", path, dir, err)
	}
	if !st.Mode().IsRegular() {
		return nil, "", fmt.Errorf("%s is not a regular file (%s): only regular files are read", path, st.Mode().Type())
	}
	// O_NONBLOCK, and the check on the opened file, because the name may
	// have been replaced since Stat.
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, "", err
	}
	if !st.Mode().IsRegular() {
		return nil, "", fmt.Errorf("%s is not a regular file (%s): only regular files are read", path, st.Mode().Type())
	}
	data, err := readlimit.Reader(f, path)
	if err != nil {
		return nil, "", err
	}
	return data, path, nil
}
