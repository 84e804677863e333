; SOCKET filter used by the CLI tests: allow AF_INET stream sockets.
.view socket
	ld [socket.family]
	jne #AF_INET, deny
	ld [socket.type]
	and #0xf
	jeq #SOCK_STREAM, allow, deny
allow:	ret #1
deny:	ret #0
