; An OPENAT/OPENAT2 filter: read-only opens only, no O_CREAT, O_TRUNC or
; O_TMPFILE, and openat2 must stay beneath its directory.
.view open

	ld [open.flags.hi]
	jne #0, deny                    ; no flags above bit 31
	ld [open.flags.lo]
	jset #O_CREAT|O_TRUNC|O_TMPFILE, deny
	and #O_ACCMODE
	jne #O_RDONLY, deny
	ld [open.resolve.lo]
	jset #RESOLVE_BENEATH, allow
	ld [op_flags_pdu]
	and #0xff
	jeq #IORING_OP_OPENAT, allow, deny
allow:	ret #1
deny:	ret #0
