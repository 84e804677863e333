package ringfence

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ringfence/ringfence/internal/readlimit"
	"github.com/ringfence/ringfence/policy"
	"github.com/ringfence/ringfence/profiles"
)

// OCIAnnotation is the OCI runtime-spec annotation that carries a ringfence
// policy in a bundle's config.json, until the spec has a field for it.
const OCIAnnotation = "org.ringfence.policy"

// PolicyFromOCI reads the policy named by the org.ringfence.policy
// annotation of the OCI bundle in dir (dir/config.json). found is false,
// with a nil error, when the bundle has no such annotation: the runtime
// decides what that means (no policy, or a default such as
// Profile("default")). See PolicyFromOCIConfig for the annotation's forms.
func PolicyFromOCI(bundleDir string) (p *policy.Policy, found bool, err error) {
	cfg := filepath.Join(bundleDir, "config.json")
	data, err := readlimit.File(cfg)
	if err != nil {
		return nil, false, err
	}
	return PolicyFromOCIConfig(data, bundleDir)
}

// PolicyFromOCIConfig reads the org.ringfence.policy annotation of an OCI
// config.json. The annotation's value is one of:
//
//   - an inline policy, YAML or JSON: any value that contains a newline or
//     starts with "{";
//   - "profile:NAME", a built-in profile;
//   - otherwise a path to a policy file; a relative path is resolved
//     against bundleDir.
//
// found is false, with a nil error, when there is no such annotation.
func PolicyFromOCIConfig(config []byte, bundleDir string) (p *policy.Policy, found bool, err error) {
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(config, &spec); err != nil {
		return nil, false, fmt.Errorf("OCI config.json: %w", err)
	}
	v, ok := spec.Annotations[OCIAnnotation]
	if !ok {
		return nil, false, nil
	}
	p, _, err = ResolvePolicyValue(v, "annotation "+OCIAnnotation, bundleDir)
	if err != nil {
		return nil, true, err
	}
	return p, true, nil
}

// ResolvePolicyValue resolves a value of the org.ringfence.policy
// annotation (the forms of PolicyFromOCIConfig: inline YAML or JSON,
// "profile:NAME", or a path resolved against baseDir) and returns the
// policy with the source text it was parsed from, so that a runtime can
// hand the same policy to a process inside a container. src names where
// the value came from, for errors ("annotation org.ringfence.policy").
//
// A policy that extends others (docs/policy.md, "Composition") is
// returned with its flattened text as source instead: parsed inside the
// container, a reference to a file would name the container's file, which
// the image controls, not the one checked here. Files an inline policy
// extends by a relative path are resolved against baseDir.
func ResolvePolicyValue(v, src, baseDir string) (p *policy.Policy, source []byte, err error) {
	trimmed := strings.TrimSpace(v)
	switch {
	case trimmed == "":
		return nil, nil, fmt.Errorf("%s is empty: give an inline policy, profile:NAME or a path", src)
	case strings.Contains(trimmed, "\n") || strings.HasPrefix(trimmed, "{"):
		source = []byte(v)
		p, err = policy.ParseWith(source, src, baseLoader{baseDir})
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
		path := trimmed
		if !filepath.IsAbs(path) {
			path = filepath.Join(baseDir, path)
		}
		source, err = readlimit.File(path)
		if err == nil {
			p, err = ParsePolicy(source, path)
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

// baseLoader resolves the bases of an inline policy: relative paths
// against dir, everything else as policy.DefaultLoader does.
type baseLoader struct{ dir string }

// Load implements policy.Loader.
func (l baseLoader) Load(ref, from string) ([]byte, string, error) {
	if policy.IsPath(ref) && !filepath.IsAbs(ref) {
		ref = filepath.Join(l.dir, ref)
	}
	return policy.DefaultLoader{}.Load(ref, from)
}
