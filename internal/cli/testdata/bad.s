	ld [socket.famly]
	jeq #AF_INTE, +1
	ret #1
