package ringfence_test

import (
	"encoding/binary"
	"fmt"

	"github.com/ringfence/ringfence"
	"github.com/ringfence/ringfence/abi"
	"github.com/ringfence/ringfence/policy"
)

// A runtime reads the policy from the OCI bundle's config.json annotation.
func ExamplePolicyFromOCIConfig() {
	config := []byte(`{
  "ociVersion": "1.2.0",
  "annotations": {"org.ringfence.policy": "profile:network-server"}
}`)
	p, found, err := ringfence.PolicyFromOCIConfig(config, ringfence.DefaultPolicyDir)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(found, len(p.Rules), "rules, default", p.Default)
	// Output: true 5 rules, default deny
}

// Compile a built-in profile for a kernel and look at the plan.
func ExampleCompile() {
	p, err := ringfence.Profile("default")
	if err != nil {
		fmt.Println(err)
		return
	}
	plan, err := ringfence.Compile(p, abi.Version{Major: 7, Minor: 0})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Opcodes the profile always allows get no filter: the kernel
	// lets them through without running one.
	filtered := map[abi.Opcode]bool{}
	for _, r := range plan.Registrations {
		filtered[r.Op] = true
	}
	fmt.Println(len(plan.Registrations), "filters;", abi.OpLast-len(filtered), "opcodes allowed with no filter to run")
	fmt.Println("opcodes newer than ringfence denied:", plan.DenyNewOpcodes)
	// Output:
	// 5 filters; 60 opcodes allowed with no filter to run
	// opcodes newer than ringfence denied: true
}

// Explain says which rule decides a request.
func ExampleExplain() {
	p, err := ringfence.ParsePolicy([]byte(`
version: 1
default: deny
rules:
  - name: tcp only
    ops: [SOCKET]
    action: allow
    when:
      socket.family: [AF_INET, AF_INET6]
      socket.type: SOCK_STREAM
`), "tcp.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	tcp := policy.Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: 2, Type: 1}}
	udp := policy.Request{Op: abi.OpSocket, Socket: abi.SocketData{Family: 2, Type: 2}}
	fmt.Println(ringfence.Explain(p, tcp).Reason)
	fmt.Println(ringfence.Explain(p, udp).Reason)
	// Output:
	// allow: rule 1 ("tcp only") (tcp.yaml:5:5) matched SOCKET
	// deny: no rule matched SOCKET; the policy's default is deny
}

// ExampleRequestFromCtx turns the context a filter sees back into the
// request the reference evaluator judges.
func ExampleRequestFromCtx() {
	var c abi.Ctx
	c.Opcode = uint8(abi.OpSocket)
	c.SetSocket(abi.SocketData{Family: 10, Type: 2}, binary.LittleEndian)
	r := ringfence.RequestFromCtx(c, binary.LittleEndian)
	fmt.Println(r.Op, r.Socket.Family, r.Socket.Type)
	// Output: SOCKET 10 2
}

// Resolve the value of an org.ringfence.policy annotation and keep its
// source, as the OCI runtime shim does to mount the policy into the
// container.
func ExampleResolvePolicyValue() {
	p, source, err := ringfence.ResolvePolicyValue("profile:deny-all", "annotation org.ringfence.policy", ringfence.DefaultPolicyDir)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Default, len(source) > 0)
	_, _, err = ringfence.ResolvePolicyValue("version: 1\ndefault: maybe\n", "annotation org.ringfence.policy", ringfence.DefaultPolicyDir)
	fmt.Println(err)
	// Output:
	// deny true
	// annotation org.ringfence.policy:2:10: default must be allow or deny, got "maybe"
}
