package xmppcr

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"sync/atomic"
	"testing"

	"gosrc.io/xmpp/stanza"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
	"github.com/cwmp-agent/cwmp-agent/schemas"
)

type recorder struct{ sent []stanza.Packet }

func (r *recorder) Send(p stanza.Packet) error { r.sent = append(r.sent, p); return nil }
func (r *recorder) SendRaw(string) error       { return nil }
func (r *recorder) SendIQ(context.Context, *stanza.IQ) (chan stanza.IQ, error) {
	return nil, errors.New("not in a fuzz test")
}

// FuzzXMPPConnectionRequest feeds the handler arbitrary IQs: it never
// panics, answers each get or set IQ exactly once, starts a session only
// for the allowed Jabber ID with the right credentials, and never puts the
// request's password in its answer.
func FuzzXMPPConnectionRequest(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzXMPPConnectionRequest")
	tree, err := datamodel.New(schemas.Device219(), datamodel.Options{})
	if err != nil {
		f.Fatal(err)
	}
	if err := tree.SetValues([]datamodel.Change{{Path: ms + "ConnReqAllowedJabberIDs", Value: "acs@xmpp.test"},
		{Path: ms + "ConnectionRequestUsername", Value: "cr-user"}, {Path: ms + "ConnectionRequestPassword", Value: "cr-pass"}},
		datamodel.SetOptions{Origin: datamodel.OriginDevice}); err != nil {
		f.Fatal(err)
	}
	var triggered atomic.Int32
	c, err := New(Config{Tree: tree, Trigger: func() { triggered.Add(1) }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var iq stanza.IQ
		if err := xml.Unmarshal(data, &iq); err != nil {
			return
		}
		before := triggered.Load()
		r := &recorder{}
		c.handle(r, &iq)
		if iq.Type != stanza.IQTypeGet && iq.Type != stanza.IQTypeSet {
			if len(r.sent) != 0 {
				t.Fatalf("answered a %q IQ", iq.Type)
			}
			return
		}
		if len(r.sent) != 1 {
			t.Fatalf("%d answers to one IQ", len(r.sent))
		}
		out, _ := xml.Marshal(r.sent[0])
		if triggered.Load() != before {
			res, ok := r.sent[0].(*stanza.IQ)
			if !ok || res.Type != stanza.IQTypeResult {
				t.Fatalf("a session started but the answer is %s", out)
			}
		}
		if iq.Any != nil && len(out) > 0 && bytes.Contains(out, []byte("cr-pass")) {
			t.Fatalf("the password is echoed: %s", out)
		}
	})
}
