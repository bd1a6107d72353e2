// Package report owns what a run tells people afterwards: the validation
// report (report.json, contract §7) and the import run summary, written
// atomically. It imports nothing of the pipeline; the pipeline fills it.
package report
