//go:build unix

package main

import (
	"os"
	"syscall"
	"time"
)

// usage is a finished process's peak RSS (KiB on Linux) and CPU time,
// from wait4's rusage.
func usage(ps *os.ProcessState) (maxRSS int64, cpu time.Duration) {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss, time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return 0, 0
}
