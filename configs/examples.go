package configs

import _ "embed" // for the example configs

// Example is threadlift.example.yaml: every key, with a comment teaching
// it, for a real migration (`threadlift init` style output). Read-only.
//
//go:embed threadlift.example.yaml
var Example []byte

// Demo is demo.yaml, the config of `make demo` (local fake Zendesk on
// 127.0.0.1:8089, source demo/sample.mbox). Read-only.
//
//go:embed demo.yaml
var Demo []byte
