package clock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFakeFiresInOrder(t *testing.T) {
	f := NewFake(time.Unix(1000, 0))
	a := f.NewTimer(2 * time.Second)
	b := f.NewTimer(time.Second)
	c := f.NewTimer(5 * time.Second)
	assert.Equal(t, 3, f.Pending())
	f.Advance(2 * time.Second)
	assert.Equal(t, time.Unix(1001, 0), (<-b.C()).Add(-time.Second), "b fired")
	<-a.C()
	assert.True(t, c.Stop())
	assert.False(t, a.Stop())
	assert.Equal(t, 0, f.Pending())
	z := f.NewTimer(0)
	select {
	case <-z.C():
	default:
		t.Fatal("a zero timer fires at once")
	}
	go func() { time.Sleep(10 * time.Millisecond); f.NewTimer(time.Hour) }()
	assert.True(t, f.WaitTimers(1, time.Second))
	d, ok := f.NextDeadline()
	assert.True(t, ok)
	assert.Equal(t, time.Unix(1002+3600, 0), d)
	var r Real
	assert.WithinDuration(t, time.Now(), r.Now(), time.Second)
	rt := r.NewTimer(time.Millisecond)
	<-rt.C()
}
