; A SOCKET filter: allow TCP and UDP sockets of the internet families,
; and Unix sockets of any type; deny everything else.
.view socket

	ld [op_flags_pdu]
	and #0xff                       ; the opcode byte (little-endian)
	jne #IORING_OP_SOCKET, deny     ; registered for SOCKET only: belt and braces
	ld [socket.family]
	jeq #AF_UNIX, allow
	jeq #AF_INET, inet
	jne #AF_INET6, deny
inet:
	ld [socket.type]
	and #0xf                        ; drop SOCK_NONBLOCK and SOCK_CLOEXEC
	jeq #SOCK_STREAM, tcp
	jne #SOCK_DGRAM, deny
	ld [socket.protocol]
	jeq #IPPROTO_IP, allow
	jeq #IPPROTO_UDP, allow, deny
tcp:
	ld [socket.protocol]
	jeq #IPPROTO_IP, allow
	jeq #IPPROTO_TCP, allow, deny
allow:	ret #1
deny:	ret #0
