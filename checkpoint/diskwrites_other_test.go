//go:build !linux

package checkpoint

// diskWrites is -1 where /proc/self/io is missing: the benchmarks then
// report no write-B/op or dirty-B/op.
func diskWrites() (wchar, dirtied int64) { return -1, -1 }
