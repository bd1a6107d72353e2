package main

import "testing"

// TestWantLeavesP7OutOfAll: the default set (no -only, or -only all) runs
// every target but P7, which -only names to run.
func TestWantLeavesP7OutOfAll(t *testing.T) {
	for _, tc := range []struct {
		only map[string]bool
		part string
		want bool
	}{
		{nil, "P1", true},
		{nil, "P7", false},
		{map[string]bool{"ALL": true}, "C1", true},
		{map[string]bool{"ALL": true}, "P7", false},
		{map[string]bool{"ALL": true, "P7": true}, "P7", true},
		{map[string]bool{"ALL": true, "P7": true}, "P5", true},
		{map[string]bool{"P7": true}, "P7", true},
		{map[string]bool{"P7": true}, "P6", false},
		{map[string]bool{"P7": true}, "GO", false},
	} {
		if got := (config{only: tc.only}).want(tc.part); got != tc.want {
			t.Errorf("only %v: want(%s) = %v, want %v", tc.only, tc.part, got, tc.want)
		}
	}
}
