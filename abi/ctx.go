// Package abi describes the Linux io_uring BPF filter ABI in Go: the context a
// filter reads (struct io_uring_bpf_ctx), the registration structures, the
// opcode table, the SQE flags and the constant names a policy author writes.
//
// The package has no system calls and no dependencies outside the standard
// library; every other ringfence package stands on it. Byte order is always a
// parameter, never detected: the kernel lays the context out in the machine's
// native order, and ringfence can reason about either.
package abi

import (
	"encoding/binary"
	"fmt"
)

// CtxSize is the size in bytes of struct io_uring_bpf_ctx, the only memory a
// filter can load from. BPF_LEN loads evaluate to this value.
const CtxSize = 40

// Byte offsets of the fields of struct io_uring_bpf_ctx.
const (
	OffUserData = 0  // u64 user_data, copied from the SQE
	OffOpcode   = 8  // u8 opcode
	OffSQEFlags = 9  // u8 sqe_flags, as the kernel holds them after prep
	OffPDUSize  = 10 // u8 pdu_size: bytes of per-opcode data that follow
	OffPad      = 11 // 5 bytes of zero padding
	OffPDU      = 16 // start of the 24-byte per-opcode union

	// SOCKET view.
	OffSocketFamily   = 16 // u32
	OffSocketType     = 20 // u32
	OffSocketProtocol = 24 // u32

	// OPENAT / OPENAT2 view.
	OffOpenFlags   = 16 // u64
	OffOpenMode    = 24 // u64
	OffOpenResolve = 32 // u64

	// CONNECT view (Linux 7.2 and later).
	OffConnectFamily = 16 // u32
	OffConnectPort   = 20 // __be16 port, then two zero bytes
	OffConnectAddr   = 24 // 4-byte IPv4 or 16-byte IPv6 address, network order
)

// PDU sizes the kernel reports for the opcodes that carry data.
const (
	PDUSizeSocket  = 12
	PDUSizeOpen    = 24
	PDUSizeConnect = 24
)

// Ctx is the decoded form of struct io_uring_bpf_ctx. Fields that do not
// belong to the context's opcode are simply zero; Ctx does not enforce the
// union, so it can describe any 40 bytes.
type Ctx struct {
	UserData uint64
	Opcode   uint8
	SQEFlags uint8
	PDUSize  uint8
	Pad      [5]byte // must be zero in a context the kernel builds

	// PDU holds the 24 bytes of per-opcode data. Use the accessor
	// methods (Socket, Open, Connect) and setters for typed views.
	PDU [24]byte
}

// SocketData is the SOCKET view of the per-opcode data.
type SocketData struct {
	Family, Type, Protocol uint32
}

// OpenData is the OPENAT/OPENAT2 view of the per-opcode data. Resolve is 0
// for OPENAT.
type OpenData struct {
	Flags, Mode, Resolve uint64
}

// ConnectData is the CONNECT view of the per-opcode data. Port is in host
// order here; Addr holds the address bytes in network order (the first 4
// bytes for IPv4, all 16 for IPv6).
type ConnectData struct {
	Family uint32
	Port   uint16
	Addr   [16]byte
}

// Encode returns the 40 bytes of c laid out in byte order bo.
func (c Ctx) Encode(bo binary.ByteOrder) [CtxSize]byte {
	var b [CtxSize]byte
	bo.PutUint64(b[OffUserData:], c.UserData)
	b[OffOpcode] = c.Opcode
	b[OffSQEFlags] = c.SQEFlags
	b[OffPDUSize] = c.PDUSize
	copy(b[OffPad:OffPDU], c.Pad[:])
	copy(b[OffPDU:], c.PDU[:])
	return b
}

// DecodeCtx decodes 40 bytes laid out in byte order bo. It returns an error
// if b is not exactly CtxSize bytes long.
func DecodeCtx(b []byte, bo binary.ByteOrder) (Ctx, error) {
	var c Ctx
	if len(b) != CtxSize {
		return c, fmt.Errorf("io_uring_bpf_ctx is %d bytes, got %d", CtxSize, len(b))
	}
	c.UserData = bo.Uint64(b[OffUserData:])
	c.Opcode = b[OffOpcode]
	c.SQEFlags = b[OffSQEFlags]
	c.PDUSize = b[OffPDUSize]
	copy(c.Pad[:], b[OffPad:OffPDU])
	copy(c.PDU[:], b[OffPDU:])
	return c, nil
}

// Socket returns the SOCKET view of c's per-opcode data in byte order bo.
func (c *Ctx) Socket(bo binary.ByteOrder) SocketData {
	return SocketData{
		Family:   bo.Uint32(c.PDU[OffSocketFamily-OffPDU:]),
		Type:     bo.Uint32(c.PDU[OffSocketType-OffPDU:]),
		Protocol: bo.Uint32(c.PDU[OffSocketProtocol-OffPDU:]),
	}
}

// SetSocket stores s as c's per-opcode data in byte order bo and sets
// PDUSize to PDUSizeSocket.
func (c *Ctx) SetSocket(s SocketData, bo binary.ByteOrder) {
	c.PDU = [24]byte{}
	bo.PutUint32(c.PDU[OffSocketFamily-OffPDU:], s.Family)
	bo.PutUint32(c.PDU[OffSocketType-OffPDU:], s.Type)
	bo.PutUint32(c.PDU[OffSocketProtocol-OffPDU:], s.Protocol)
	c.PDUSize = PDUSizeSocket
}

// Open returns the OPENAT/OPENAT2 view of c's per-opcode data.
func (c *Ctx) Open(bo binary.ByteOrder) OpenData {
	return OpenData{
		Flags:   bo.Uint64(c.PDU[OffOpenFlags-OffPDU:]),
		Mode:    bo.Uint64(c.PDU[OffOpenMode-OffPDU:]),
		Resolve: bo.Uint64(c.PDU[OffOpenResolve-OffPDU:]),
	}
}

// SetOpen stores o as c's per-opcode data and sets PDUSize to PDUSizeOpen.
func (c *Ctx) SetOpen(o OpenData, bo binary.ByteOrder) {
	c.PDU = [24]byte{}
	bo.PutUint64(c.PDU[OffOpenFlags-OffPDU:], o.Flags)
	bo.PutUint64(c.PDU[OffOpenMode-OffPDU:], o.Mode)
	bo.PutUint64(c.PDU[OffOpenResolve-OffPDU:], o.Resolve)
	c.PDUSize = PDUSizeOpen
}

// Connect returns the CONNECT view of c's per-opcode data.
func (c *Ctx) Connect(bo binary.ByteOrder) ConnectData {
	var d ConnectData
	d.Family = bo.Uint32(c.PDU[OffConnectFamily-OffPDU:])
	d.Port = binary.BigEndian.Uint16(c.PDU[OffConnectPort-OffPDU:])
	copy(d.Addr[:], c.PDU[OffConnectAddr-OffPDU:])
	return d
}

// SetConnect stores d as c's per-opcode data and sets PDUSize to
// PDUSizeConnect. The port is stored in network order, as the kernel does.
func (c *Ctx) SetConnect(d ConnectData, bo binary.ByteOrder) {
	c.PDU = [24]byte{}
	bo.PutUint32(c.PDU[OffConnectFamily-OffPDU:], d.Family)
	binary.BigEndian.PutUint16(c.PDU[OffConnectPort-OffPDU:], d.Port)
	copy(c.PDU[OffConnectAddr-OffPDU:], d.Addr[:])
	c.PDUSize = PDUSizeConnect
}
