// Command etcd is the etcd server of the pinned release, built from its Go module for the
// end-to-end tests' control plane (scripts/build-kube.sh). etcd's own main package lives in a
// module whose go.mod has replace lines, so `go install` refuses it; this wrapper calls the
// same entry point.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
