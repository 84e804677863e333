package ocishim

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/internal/readlimit"

	"go.yaml.in/yaml/v3"
)

// DefaultConfigPath is where ringfence-runtime reads its configuration.
const DefaultConfigPath = "/etc/ringfence/runtime.yaml"

// RuntimeEnv names the environment variable that chooses the real runtime;
// it wins over the configuration file.
const RuntimeEnv = "RINGFENCE_RUNTIME"

// Config is the configuration file of ringfence-runtime:
//
//	runtime: crun                 # the real OCI runtime (name or path; default runc)
//	binary: /usr/bin/ringfence    # the ringfence binary mounted into fenced containers (default: this one)
//	policy: profile:default       # policy of containers whose annotations name none, "none" included (default: unset, they pass through)
//	floor: profile:default        # policy that holds every container, whatever its annotations (default: unset)
//	ifSupported: false            # start containers unfenced on kernels that cannot fence them
//	seccompCheck: refuse          # refuse (default), warn or off: a policy that lets io_uring do what the seccomp profile forbids
//	policyDir: /etc/ringfence/policies # the only directory annotations may name policy files in (default ringfence.DefaultPolicyDir)
type Config struct {
	Runtime      string `yaml:"runtime"`
	Binary       string `yaml:"binary"`
	Policy       string `yaml:"policy"`
	Floor        string `yaml:"floor"`
	IfSupported  bool   `yaml:"ifSupported"`
	SeccompCheck string `yaml:"seccompCheck"`
	PolicyDir    string `yaml:"policyDir"`
}

// LoadConfig reads the configuration at path; a missing file is the empty
// configuration. Unknown keys are an error, with file:line:column.
func LoadConfig(path string) (Config, error) {
	var c Config
	data, err := readlimit.File(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	return ParseConfig(data, path)
}

// ParseConfig parses a configuration file's contents; name is used in
// errors.
func ParseConfig(data []byte, name string) (Config, error) {
	var c Config
	d := yaml.NewDecoder(bytes.NewReader(data))
	d.KnownFields(true)
	if err := d.Decode(&c); err != nil {
		if err.Error() == "EOF" {
			return c, nil
		}
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			return c, fmt.Errorf("%s:%s", name, trimYAMLLine(te.Errors[0]))
		}
		return c, fmt.Errorf("%s: %v", name, err)
	}
	if c.PolicyDir != "" && !filepath.IsAbs(c.PolicyDir) {
		return c, fmt.Errorf("%s: policyDir is %q: want an absolute path", name, c.PolicyDir)
	}
	if strings.TrimSpace(c.Policy) == ringfence.OCINone {
		return c, fmt.Errorf("%s: policy is %q: leave it out for no default policy", name, c.Policy)
	}
	if strings.TrimSpace(c.Floor) == ringfence.OCINone {
		return c, fmt.Errorf("%s: floor is %q: leave it out for no floor", name, c.Floor)
	}
	switch c.SeccompCheck {
	case "", "refuse", "warn", "off":
	default:
		return c, fmt.Errorf("%s: seccompCheck is %q: want refuse, warn or off", name, c.SeccompCheck)
	}
	return c, nil
}

// PolicyDirectory is the trusted directory of the policy files that
// annotations may name: PolicyDir, or ringfence.DefaultPolicyDir.
func (c Config) PolicyDirectory() string {
	if c.PolicyDir != "" {
		return c.PolicyDir
	}
	return ringfence.DefaultPolicyDir
}

// trimYAMLLine turns yaml's "line 3: field x not found in type ..." into
// "3: unknown key x".
func trimYAMLLine(s string) string {
	var line int
	var field string
	if n, _ := fmt.Sscanf(s, "line %d: field %s not found", &line, &field); n == 2 {
		return fmt.Sprintf("%d: unknown key %q (known: runtime, binary, policy, floor, ifSupported, seccompCheck, policyDir)", line, field)
	}
	return " " + s
}
