package policy

import (
	"fmt"
	"strings"

	"github.com/ringfence/ringfence/abi"
)

// String returns the condition as a policy would write it, e.g.
// "socket.family in [AF_INET, AF_INET6]".
func (c Cond) String() string {
	f, _ := LookupField(c.Field)
	val := func(v uint64) string { return FormatValue(f, v) }
	switch c.Op {
	case In, NotIn:
		parts := make([]string, len(c.Values))
		for i, v := range c.Values {
			parts[i] = val(v)
		}
		return fmt.Sprintf("%s %s [%s]", c.Field, c.Op, strings.Join(parts, ", "))
	case Range, NotRange:
		if len(c.Values) == 2 {
			return fmt.Sprintf("%s %s [%s, %s]", c.Field, c.Op, val(c.Values[0]), val(c.Values[1]))
		}
	case Masked:
		if len(c.Values) == 2 {
			return fmt.Sprintf("%s masked {mask: %s, value: %s}", c.Field, val(c.Values[0]), val(c.Values[1]))
		}
	case CIDR, NotCIDR:
		parts := make([]string, len(c.Nets))
		for i, n := range c.Nets {
			parts[i] = n.String()
		}
		return fmt.Sprintf("%s %s [%s]", c.Field, c.Op, strings.Join(parts, ", "))
	}
	if len(c.Values) == 1 {
		return fmt.Sprintf("%s %s %s", c.Field, c.Op, val(c.Values[0]))
	}
	return fmt.Sprintf("%s %s %v", c.Field, c.Op, c.Values)
}

// FormatValue writes v for field f the way a reader expects: a constant
// name when one stands for exactly v (AF_INET), flags as names joined by
// "|" when every bit has a name (O_CREAT|O_TRUNC), else a number (hex for
// bit fields, decimal otherwise).
func FormatValue(f FieldSpec, v uint64) string {
	if f.Group != "" {
		if name, ok := abi.ConstName(f.Group, v); ok {
			return name
		}
		if v == 0 {
			return "0"
		}
		if f.Group == abi.GroupMode {
			return fmt.Sprintf("0o%o", v)
		}
		if f.Group == abi.GroupSockType {
			// A type and the SOCK_NONBLOCK and SOCK_CLOEXEC bits:
			// SOCK_STREAM|SOCK_NONBLOCK.
			var names []string
			if t := v &^ SockTypeIgnore; t != 0 {
				name, ok := abi.ConstName(f.Group, t)
				if !ok {
					return fmt.Sprintf("%#x", v)
				}
				names = append(names, name)
			}
			for bit := uint64(1); bit != 0; bit <<= 1 {
				if v&SockTypeIgnore&bit != 0 {
					name, _ := abi.ConstName(f.Group, bit)
					names = append(names, name)
				}
			}
			return strings.Join(names, "|")
		}
		switch f.Group {
		case abi.GroupOpen, abi.GroupResolve, abi.GroupSQE:
			var names []string
			rest := v
			for bit := uint64(1); bit != 0 && rest != 0; bit <<= 1 {
				if rest&bit == 0 {
					continue
				}
				name, ok := abi.ConstName(f.Group, bit)
				if !ok {
					break
				}
				names = append(names, name)
				rest &^= bit
			}
			if rest == 0 && len(names) > 0 {
				return strings.Join(names, "|")
			}
			return fmt.Sprintf("%#x", v)
		}
	}
	return fmt.Sprintf("%d", v)
}
