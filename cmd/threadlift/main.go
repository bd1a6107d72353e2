// Command threadlift moves conversations out of legacy archives (mbox, csv,
// json) into Zendesk Support as side conversations, exactly once, resumably.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/configs"
	"github.com/threadlift/threadlift/pipeline"
)

// Exit codes (contract §8).
const (
	exitOK      = 0
	exitPartial = 1
	exitUsage   = 2
	exitFatal   = 3
	// exitPaused (EX_TEMPFAIL of sysexits.h, "try again later"): Zendesk
	// asked to pause longer than zendesk.max_retry_after; nothing is
	// wrong, the checkpoint is consistent, and import resumes when run
	// again after the time printed. An extension of contract §8: 130 says
	// a person or a signal stopped the run, 3 that something must be fixed.
	exitPaused      = 75
	exitInterrupted = 130
)

// errPartial means the run finished but something was not imported or
// would be rejected; failures lists it.
var errPartial = errors.New("some threads or messages failed or were rejected (see `threadlift failures`)")

// errUsage marks command-line mistakes.
var errUsage = errors.New("usage error")

func main() {
	ctx, stop := signalContext()
	defer stop()
	govern, stopGoverning := context.WithCancel(context.Background())
	defer stopGoverning()
	governMemory(govern, os.Getenv)
	root, g := newRoot(os.Stdout, os.Stderr, os.Getenv)
	err := root.ExecuteContext(ctx)
	code := exitCode(err)
	if err != nil && !errors.Is(err, errPartial) && !errors.Is(err, pipeline.ErrInterrupted) {
		fmt.Fprintln(os.Stderr, "threadlift:", err)
	}
	stop()
	// Last of all, with the code the process exits with (the metrics).
	for _, f := range g.atExit {
		f(code)
	}
	os.Exit(code)
}

// exitCode is the one place errors become exit codes.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, pipeline.ErrInterrupted), errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, pipeline.ErrPaused):
		return exitPaused
	case errors.Is(err, configs.ErrConfig), errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, checkpoint.ErrLocked), errors.Is(err, checkpoint.ErrUnusable), errors.Is(err, checkpoint.ErrReadOnly),
		errors.Is(err, checkpoint.ErrOtherAccount),
		errors.Is(err, pipeline.ErrFatal):
		return exitFatal
	case errors.Is(err, errPartial):
		return exitPartial
	}
	return exitFatal
}

// signalContext is cancelled by the first SIGINT/SIGTERM: the run stops
// taking threads and lets in-flight requests finish. A second signal exits
// at once; the checkpoint's write-ahead records make that safe to resume.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			fmt.Fprintln(os.Stderr, "threadlift: stopping: finishing requests in flight (interrupt again to quit at once)")
			cancel()
		case <-done:
			return
		}
		select {
		case <-ch:
			fmt.Fprintln(os.Stderr, "threadlift: quitting at once; the next import resumes")
			os.Exit(exitInterrupted)
		case <-done:
		}
	}()
	var once bool
	return ctx, func() {
		if !once {
			once = true
			signal.Stop(ch)
			close(done)
			cancel()
		}
	}
}
