// Package configs owns threadlift's YAML configuration file: its schema
// (contract §2), its defaults, the THREADLIFT_* environment overrides,
// strict decoding (every unknown key, wrong type or bad value is reported
// with its dotted key and line), the resolution of relative paths against
// the config file's folder (contract §10), and the embedded example
// configs.
//
// YAML is parsed here and nowhere else: the rest of the program receives a
// validated *Config and turns it into its own Options structs.
//
// Every error Load, SourceFiles and CheckImport return wraps ErrConfig, so
// main maps them to exit code 2 with one errors.Is.
package configs
