// Package testrun runs a component's Run loop in the background of a test.
package testrun

import (
	"context"
	"testing"
)

// Go runs run in a goroutine until stop is called or the test ends: stop
// cancels run's context and waits for it to return. Calling stop more than
// once is harmless, so a test may stop early and still leave the cleanup.
func Go(t testing.TB, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx)
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}
