//go:build !unix

package main

import (
	"os"
	"time"
)

// usage knows no peak RSS where there is no rusage; CPU time is what
// os.ProcessState tells.
func usage(ps *os.ProcessState) (maxRSS int64, cpu time.Duration) {
	return 0, ps.UserTime() + ps.SystemTime()
}
