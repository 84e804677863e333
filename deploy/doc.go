// Package deploy holds the files that install ringfence in Kubernetes,
// Docker and Podman (see docs/kubernetes.md): the RuntimeClass and the
// containerd handler of the runtime shim, the NRI plugin's DaemonSet, and
// example pods. It has no code; its test decodes every manifest strictly
// with the Kubernetes API types.
package deploy
