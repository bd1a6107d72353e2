//go:build !unix

package checkpoint

import "time"

// cpuTime is 0 where getrusage(2) is missing: the benchmark's cpu-ns/op
// then reads 0.
func cpuTime() time.Duration { return 0 }
