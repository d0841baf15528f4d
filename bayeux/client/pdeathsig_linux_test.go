//go:build linux

package client_test

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill a server process if the test binary
// dies without running its cleanups.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
