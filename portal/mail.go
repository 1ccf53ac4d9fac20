package portal

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"sportello/messaging/channels"
)

// mailInvitation sends the invitation link in the background: the inviter
// sees the link on the page anyway, so a slow or failing mail server must
// not hold up the request.
func (a *App) mailInvitation(r *http.Request, to, link, role string) {
	inst := instCtxOf(r).Inst.Name
	inviter := viewerOf(r).User.Name
	lang := langOf(r)
	roleName := a.Catalog.T(lang, "role."+role)
	m := channels.Mail{
		To:      to,
		Subject: a.Catalog.T(lang, "members.mail.subject", inst),
		Body:    a.Catalog.T(lang, "members.mail.body", inviter, inst, roleName, link),
	}
	a.mailInBackground(m, "invitation mail not sent")
}

// mailInBackground sends m from a goroutine of its own, within 30 seconds,
// and logs failure as notSent. A panic in the mailer (an odd server reply
// hitting a bug) is logged the same way instead of ending the process,
// which no request handler's recovery would catch here.
func (a *App) mailInBackground(m channels.Mail, notSent string, attrs ...any) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		defer func() {
			if v := recover(); v != nil {
				a.Logger.Error(notSent, append(attrs, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))...)
			}
		}()
		if err := a.Mailer.Send(ctx, m); err != nil {
			a.Logger.Warn(notSent, append(attrs, "err", err)...)
		}
	}()
}
