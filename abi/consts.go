package abi

// Group names a family of constants a policy or assembly author may write by
// name. A name is looked up within the group its field expects, so that
// AF_INET cannot be mistaken for an O_ flag.
type Group string

// The constant groups.
const (
	GroupFamily   Group = "family"   // AF_*: socket.family, connect.family
	GroupSockType Group = "socktype" // SOCK_* types and the SOCK_NONBLOCK/SOCK_CLOEXEC bits: socket.type
	GroupProto    Group = "protocol" // IPPROTO_*: socket.protocol
	GroupOpen     Group = "open"     // O_*: open.flags
	GroupMode     Group = "mode"     // S_I*: open.mode
	GroupResolve  Group = "resolve"  // RESOLVE_*: open.resolve
	GroupSQE      Group = "sqe"      // IOSQE_*: sqe_flags
)

// Const is a named constant, with Linux x86-64 (generic) values.
type Const struct {
	Name  string
	Group Group
	Value uint64
}

// Consts returns every named constant. The slice is freshly allocated on
// each call, in a fixed order: within a group, the preferred name for a
// value comes first.
func Consts() []Const {
	return []Const{
		{"AF_UNSPEC", GroupFamily, 0}, {"AF_UNIX", GroupFamily, 1}, {"AF_LOCAL", GroupFamily, 1},
		{"AF_INET", GroupFamily, 2}, {"AF_AX25", GroupFamily, 3}, {"AF_IPX", GroupFamily, 4},
		{"AF_APPLETALK", GroupFamily, 5}, {"AF_NETROM", GroupFamily, 6}, {"AF_BRIDGE", GroupFamily, 7},
		{"AF_ATMPVC", GroupFamily, 8}, {"AF_X25", GroupFamily, 9}, {"AF_INET6", GroupFamily, 10},
		{"AF_ROSE", GroupFamily, 11}, {"AF_DECnet", GroupFamily, 12}, {"AF_NETBEUI", GroupFamily, 13},
		{"AF_SECURITY", GroupFamily, 14}, {"AF_KEY", GroupFamily, 15}, {"AF_NETLINK", GroupFamily, 16},
		{"AF_PACKET", GroupFamily, 17}, {"AF_ASH", GroupFamily, 18}, {"AF_ECONET", GroupFamily, 19},
		{"AF_ATMSVC", GroupFamily, 20}, {"AF_RDS", GroupFamily, 21}, {"AF_SNA", GroupFamily, 22},
		{"AF_IRDA", GroupFamily, 23}, {"AF_PPPOX", GroupFamily, 24}, {"AF_WANPIPE", GroupFamily, 25},
		{"AF_LLC", GroupFamily, 26}, {"AF_IB", GroupFamily, 27}, {"AF_MPLS", GroupFamily, 28},
		{"AF_CAN", GroupFamily, 29}, {"AF_TIPC", GroupFamily, 30}, {"AF_BLUETOOTH", GroupFamily, 31},
		{"AF_IUCV", GroupFamily, 32}, {"AF_RXRPC", GroupFamily, 33}, {"AF_ISDN", GroupFamily, 34},
		{"AF_PHONET", GroupFamily, 35}, {"AF_IEEE802154", GroupFamily, 36}, {"AF_CAIF", GroupFamily, 37},
		{"AF_ALG", GroupFamily, 38}, {"AF_NFC", GroupFamily, 39}, {"AF_VSOCK", GroupFamily, 40},
		{"AF_KCM", GroupFamily, 41}, {"AF_QIPCRTR", GroupFamily, 42}, {"AF_SMC", GroupFamily, 43},
		{"AF_XDP", GroupFamily, 44}, {"AF_MCTP", GroupFamily, 45},

		{"SOCK_STREAM", GroupSockType, 1}, {"SOCK_DGRAM", GroupSockType, 2}, {"SOCK_RAW", GroupSockType, 3},
		{"SOCK_RDM", GroupSockType, 4}, {"SOCK_SEQPACKET", GroupSockType, 5}, {"SOCK_DCCP", GroupSockType, 6},
		{"SOCK_PACKET", GroupSockType, 10}, {"SOCK_NONBLOCK", GroupSockType, 0o4000},
		{"SOCK_CLOEXEC", GroupSockType, 0o2000000},

		{"IPPROTO_IP", GroupProto, 0}, {"IPPROTO_ICMP", GroupProto, 1}, {"IPPROTO_IGMP", GroupProto, 2},
		{"IPPROTO_IPIP", GroupProto, 4}, {"IPPROTO_TCP", GroupProto, 6}, {"IPPROTO_EGP", GroupProto, 8},
		{"IPPROTO_PUP", GroupProto, 12}, {"IPPROTO_UDP", GroupProto, 17}, {"IPPROTO_IDP", GroupProto, 22},
		{"IPPROTO_TP", GroupProto, 29}, {"IPPROTO_DCCP", GroupProto, 33}, {"IPPROTO_IPV6", GroupProto, 41},
		{"IPPROTO_RSVP", GroupProto, 46}, {"IPPROTO_GRE", GroupProto, 47}, {"IPPROTO_ESP", GroupProto, 50},
		{"IPPROTO_AH", GroupProto, 51}, {"IPPROTO_ICMPV6", GroupProto, 58}, {"IPPROTO_MTP", GroupProto, 92},
		{"IPPROTO_BEETPH", GroupProto, 94}, {"IPPROTO_ENCAP", GroupProto, 98}, {"IPPROTO_PIM", GroupProto, 103},
		{"IPPROTO_COMP", GroupProto, 108}, {"IPPROTO_L2TP", GroupProto, 115}, {"IPPROTO_SCTP", GroupProto, 132},
		{"IPPROTO_UDPLITE", GroupProto, 136}, {"IPPROTO_MPLS", GroupProto, 137}, {"IPPROTO_ETHERNET", GroupProto, 143},
		{"IPPROTO_RAW", GroupProto, 255}, {"IPPROTO_SMC", GroupProto, 256}, {"IPPROTO_MPTCP", GroupProto, 262},

		{"O_RDONLY", GroupOpen, 0}, {"O_WRONLY", GroupOpen, 0o1}, {"O_RDWR", GroupOpen, 0o2},
		{"O_ACCMODE", GroupOpen, 0o3}, {"O_CREAT", GroupOpen, 0o100}, {"O_EXCL", GroupOpen, 0o200},
		{"O_NOCTTY", GroupOpen, 0o400}, {"O_TRUNC", GroupOpen, 0o1000}, {"O_APPEND", GroupOpen, 0o2000},
		{"O_NONBLOCK", GroupOpen, 0o4000}, {"O_NDELAY", GroupOpen, 0o4000}, {"O_DSYNC", GroupOpen, 0o10000},
		{"O_ASYNC", GroupOpen, 0o20000}, {"O_DIRECT", GroupOpen, 0o40000}, {"O_LARGEFILE", GroupOpen, 0o100000},
		{"O_DIRECTORY", GroupOpen, 0o200000}, {"O_NOFOLLOW", GroupOpen, 0o400000}, {"O_NOATIME", GroupOpen, 0o1000000},
		{"O_CLOEXEC", GroupOpen, 0o2000000}, {"O_SYNC", GroupOpen, 0o4010000}, {"O_PATH", GroupOpen, 0o10000000},
		{"O_TMPFILE", GroupOpen, 0o20200000}, {"__O_TMPFILE", GroupOpen, 0o20000000},

		{"S_IRWXU", GroupMode, 0o700}, {"S_IRUSR", GroupMode, 0o400}, {"S_IWUSR", GroupMode, 0o200},
		{"S_IXUSR", GroupMode, 0o100}, {"S_IRWXG", GroupMode, 0o70}, {"S_IRGRP", GroupMode, 0o40},
		{"S_IWGRP", GroupMode, 0o20}, {"S_IXGRP", GroupMode, 0o10}, {"S_IRWXO", GroupMode, 0o7},
		{"S_IROTH", GroupMode, 0o4}, {"S_IWOTH", GroupMode, 0o2}, {"S_IXOTH", GroupMode, 0o1},
		{"S_ISUID", GroupMode, 0o4000}, {"S_ISGID", GroupMode, 0o2000}, {"S_ISVTX", GroupMode, 0o1000},

		{"RESOLVE_NO_XDEV", GroupResolve, 0x01}, {"RESOLVE_NO_MAGICLINKS", GroupResolve, 0x02},
		{"RESOLVE_NO_SYMLINKS", GroupResolve, 0x04}, {"RESOLVE_BENEATH", GroupResolve, 0x08},
		{"RESOLVE_IN_ROOT", GroupResolve, 0x10}, {"RESOLVE_CACHED", GroupResolve, 0x20},

		{"IOSQE_FIXED_FILE", GroupSQE, IOSQEFixedFile}, {"IOSQE_IO_DRAIN", GroupSQE, IOSQEIODrain},
		{"IOSQE_IO_LINK", GroupSQE, IOSQEIOLink}, {"IOSQE_IO_HARDLINK", GroupSQE, IOSQEIOHardlink},
		{"IOSQE_ASYNC", GroupSQE, IOSQEAsync}, {"IOSQE_BUFFER_SELECT", GroupSQE, IOSQEBufferSelect},
		{"IOSQE_CQE_SKIP_SUCCESS", GroupSQE, IOSQECQESkipSuccess},
	}
}

// LookupConst finds a constant by exact name. If group is not empty, only
// constants of that group match. Names are case-sensitive, as in C.
func LookupConst(name string, group Group) (Const, bool) {
	for _, c := range Consts() {
		if c.Name == name && (group == "" || c.Group == group) {
			return c, true
		}
	}
	return Const{}, false
}

// ConstName returns the preferred name of value v in group g, if there is
// one that stands for exactly v.
func ConstName(g Group, v uint64) (string, bool) {
	for _, c := range Consts() {
		if c.Group == g && c.Value == v {
			return c.Name, true
		}
	}
	return "", false
}

// ConstNames returns the names of the known constants of group g, or of
// all of them when g is empty, in the order of Consts: the candidates of
// DidYouMean for a mistyped constant.
func ConstNames(g Group) []string {
	var names []string
	for _, c := range Consts() {
		if g == "" || c.Group == g {
			names = append(names, c.Name)
		}
	}
	return names
}
