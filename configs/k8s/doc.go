// Package k8s holds example Kubernetes manifests for threadlift (no Go
// code): an Indexed Job that runs a one-off migration as N shards
// (job-indexed.yaml), a CronJob for the nightly backfill of the same shards
// (cronjob-backfill.yaml), the config as a ConfigMap (configmap.yaml), the
// volume of the archive and checkpoints (pvc.yaml), and alerts on the
// metrics the shards push to a Pushgateway (prometheusrule.yaml). They run
// the image of the repository's Dockerfile. Its test parses every file and
// the Dockerfile, and checks that they fit together: the image's user is
// the pods' runAsUser, its TMPDIR an emptyDir under a read-only root
// filesystem, its THREADLIFT_CONFIG the mounted config, and the alerts
// name metrics threadlift writes.
package k8s
