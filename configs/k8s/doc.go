// Package k8s holds example Kubernetes manifests for threadlift (no Go
// code): an Indexed Job that runs a one-off migration as N shards
// (job-indexed.yaml), a CronJob for the nightly backfill of the same shards
// (cronjob-backfill.yaml), the config as a ConfigMap (configmap.yaml) and
// the volume of the archive and checkpoints (pvc.yaml). Its test parses
// every file and checks that they fit together.
package k8s
