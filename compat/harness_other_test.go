//go:build !linux

package compat

import "os/exec"

func killWithParent(cmd *exec.Cmd) {}
