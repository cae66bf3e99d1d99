//go:build !amd64 && !arm64

package lab

// sysSetns is unknown on this architecture: InNS reports ENOSYS.
const sysSetns = -1
