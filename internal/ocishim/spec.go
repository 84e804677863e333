package ocishim

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ringfence/ringfence/internal/ocifence"
)

// config is a config.json read for rewriting: the fields the shim changes
// are decoded, everything else is kept as raw JSON, so fields this version
// of the runtime-spec types does not know (newer ones, runtime-specific
// ones) pass through untouched.
type config struct {
	top         map[string]json.RawMessage
	process     map[string]json.RawMessage
	linux       map[string]json.RawMessage
	args        []string
	mounts      []specs.Mount
	annotations map[string]string
}

// parseConfig decodes a config.json.
func parseConfig(data []byte) (*config, error) {
	c := &config{}
	if err := json.Unmarshal(data, &c.top); err != nil {
		return nil, err
	}
	if c.top == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	if err := field(c.top, "process", &c.process); err != nil {
		return nil, err
	}
	if err := field(c.process, "args", &c.args); err != nil {
		return nil, fmt.Errorf("process.%w", err)
	}
	if err := field(c.top, "linux", &c.linux); err != nil {
		return nil, err
	}
	if err := field(c.top, "mounts", &c.mounts); err != nil {
		return nil, err
	}
	if err := field(c.top, "annotations", &c.annotations); err != nil {
		return nil, err
	}
	return c, nil
}

// field decodes m[key] into v, if present.
func field(m map[string]json.RawMessage, key string, v any) error {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// seccomp decodes linux.seccomp strictly: a field the shim does not know
// could change what the profile means, so it refuses to rewrite it.
func (c *config) seccomp() (*specs.LinuxSeccomp, error) {
	raw, ok := c.linux["seccomp"]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	var s specs.LinuxSeccomp
	if err := d.Decode(&s); err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w (ringfence-runtime will not rewrite a profile it cannot fully read)", err)
	}
	return &s, nil
}

// fence rewrites c for a fenced container: the process arguments args
// (under "ringfence run"), the mounts added, the seccomp profile opened
// for io_uring, and the FencedKey annotation.
func (c *config) fence(args []string, mounts []specs.Mount) error {
	s, err := c.seccomp()
	if err != nil {
		return err
	}
	opened, changes := ocifence.OpenSeccomp(s)
	c.args = args
	c.mounts = append(c.mounts, mounts...)
	if c.annotations == nil {
		c.annotations = map[string]string{}
	}
	c.annotations[ocifence.FencedKey] = "true"
	if err := set(c.process, "args", c.args); err != nil {
		return err
	}
	if err := set(c.top, "process", c.process); err != nil {
		return err
	}
	if err := set(c.top, "mounts", c.mounts); err != nil {
		return err
	}
	if err := set(c.top, "annotations", c.annotations); err != nil {
		return err
	}
	if len(changes) > 0 {
		if err := set(c.linux, "seccomp", opened); err != nil {
			return err
		}
		if err := set(c.top, "linux", c.linux); err != nil {
			return err
		}
	}
	return nil
}

func set(m map[string]json.RawMessage, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	m[key] = b
	return nil
}

// marshal encodes c, indented as runtimes write config.json.
func (c *config) marshal() ([]byte, error) {
	return json.MarshalIndent(c.top, "", "\t")
}
