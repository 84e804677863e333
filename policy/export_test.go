package policy

// Exported for the external test package (policy_test), which also
// imports package compile.
var (
	RandPolicy  = randPolicy
	RandRequest = randRequest
	PropGroups  = propGroups
)
