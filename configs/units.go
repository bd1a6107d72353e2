package configs

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ByteSize is a size in bytes, written in the config as a plain number of
// bytes ("1048576") or with a unit: decimal kB/KB, MB, GB, TB (powers of
// 1000) or binary KiB, MiB, GiB, TiB (powers of 1024), case-insensitive,
// with optional space ("10 MB"). B alone means bytes.
type ByteSize int64

// String formats b with the largest binary unit that divides it exactly.
func (b ByteSize) String() string {
	units := []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	for _, u := range units {
		if b != 0 && int64(b)%u.size == 0 {
			return fmt.Sprintf("%d%s", int64(b)/u.size, u.name)
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseByteSize parses a size such as "25MiB", "25MB", "1.5GiB", "512 KiB"
// or "1048576". It must be positive.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := byteUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("want a size such as 25MiB, 25MB or 1048576, got %q", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("want a size such as 25MiB, 25MB or 1048576, got %q", s)
	}
	v := f * mult
	if v >= math.MaxInt64 || v != v {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	if v < 1 {
		return 0, fmt.Errorf("size must be at least 1 byte, got %q", s)
	}
	return ByteSize(int64(v)), nil
}

// Duration is a time.Duration written as a Go duration ("30s", "2m",
// "1m30s").
type Duration time.Duration

// String formats d as a Go duration.
func (d Duration) String() string { return time.Duration(d).String() }

// ParseDuration parses a Go duration; it must be positive and carry a unit.
func ParseDuration(s string) (Duration, error) {
	t := strings.TrimSpace(s)
	if _, err := strconv.ParseFloat(t, 64); err == nil {
		return 0, fmt.Errorf("want a duration with a unit such as 30s or 2m, got %q", s)
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 30s or 2m, got %q", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration must be positive, got %q", s)
	}
	return Duration(d), nil
}
