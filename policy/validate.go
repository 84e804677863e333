package policy

import "github.com/ringfence/ringfence/abi"

// Validate checks a policy built in code the way Parse checks a file: known
// opcodes, at least one per rule and no duplicates, known fields each rule's
// opcodes have, operand counts, values within the field's width, no ignored
// bits in sets and bit tests, masked prefixes. It returns an ErrorList or nil.
func (p *Policy) Validate() error {
	rd := &reader{FileErrors: FileErrors{File: p.File}}
	if p.Version != Version {
		rd.ErrorAt(Pos{File: p.File}, "unsupported policy version %d: this ringfence reads version %d", p.Version, Version)
	}
	if p.Default > Allow {
		rd.ErrorAt(p.DefaultPos, "default action %d is neither deny nor allow", p.Default)
	}
	if p.Register != nil {
		where := p.Register.Pos
		if where == (Pos{}) {
			where = Pos{File: p.File}
		}
		seen := map[abi.RegisterOp]bool{}
		for _, op := range p.Register.Allow {
			if int(op) >= abi.RegisterOpLast {
				rd.ErrorAt(where, "register: unknown register operation %d", op)
			}
			if seen[op] {
				rd.ErrorAt(where, "register: %s is listed twice", op)
			}
			seen[op] = true
		}
	}
	for i, r := range p.Rules {
		where := r.Pos
		if where == (Pos{}) {
			where = Pos{File: p.File}
		}
		label := r.Label(i)
		if r.Action > Allow {
			rd.ErrorAt(where, "%s: action %d is neither deny nor allow", label, r.Action)
		}
		if len(r.Ops) == 0 {
			rd.ErrorAt(where, "%s names no opcodes", label)
		}
		seen := map[abi.Opcode]bool{}
		for _, op := range r.Ops {
			if int(op) >= abi.OpLast {
				rd.ErrorAt(where, "%s: unknown opcode %d", label, op)
			}
			if seen[op] {
				rd.ErrorAt(where, "%s: %s is listed twice", label, op)
			}
			seen[op] = true
		}
		for _, c := range r.Conds {
			cp := c.Pos
			if cp == (Pos{}) {
				cp = where
			}
			f, ok := LookupField(c.Field)
			if !ok {
				rd.ErrorAt(cp, "%s: unknown field %q", label, c.Field)
				continue
			}
			for _, op := range r.Ops {
				if !FieldApplies(op, c.Field) {
					rd.ErrorAt(cp, "%s: %s exists only for %s, not %s", label, c.Field, viewOps(f.View), op)
				}
			}
			if c.Op >= numCmpOps {
				rd.ErrorAt(cp, "%s: unknown operator %d", label, c.Op)
				continue
			}
			if (c.Op == CIDR || c.Op == NotCIDR) != f.IsAddr() {
				rd.ErrorAt(cp, "%s: operator %s does not apply to %s", label, c.Op, c.Field)
				continue
			}
			want := map[CmpOp]int{Range: 2, NotRange: 2, Masked: 2}[c.Op]
			switch {
			case c.Op == In || c.Op == NotIn:
				if len(c.Values) == 0 {
					rd.ErrorAt(cp, "%s: %s on %s has no values", label, c.Op, c.Field)
				}
			case c.Op == CIDR || c.Op == NotCIDR:
				if len(c.Nets) == 0 {
					rd.ErrorAt(cp, "%s: %s has no prefixes", label, c.Op)
				}
				for _, n := range c.Nets {
					if !n.IsValid() || n.Masked() != n {
						rd.ErrorAt(cp, "%s: prefix %s is invalid or has host bits", label, n)
					}
				}
			default:
				if want == 0 {
					want = 1
				}
				if len(c.Values) != want {
					rd.ErrorAt(cp, "%s: %s on %s needs %d values, has %d", label, c.Op, c.Field, want, len(c.Values))
				}
			}
			for _, v := range c.Values {
				if v > f.Max() {
					rd.ErrorAt(cp, "%s: value %#x is out of range for %s (%d bits)", label, v, c.Field, f.Bits)
				}
			}
			rd.checkIgnored(c, f)
		}
	}
	if len(rd.Errs) > 0 {
		return sortErrors(rd.Errs)
	}
	return nil
}
