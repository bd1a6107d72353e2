//go:build !unix && !windows

package checkpoint

import (
	"errors"
	"os"
)

// lockFile refuses: without a lock two runs could share a checkpoint.
func lockFile(*os.File) error {
	return errors.New("this system has no file lock threadlift knows how to take")
}

func unlockFile(*os.File) {}
