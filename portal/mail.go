package portal

import (
	"context"
	"net/http"
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
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Mailer.Send(ctx, m); err != nil {
			a.Logger.Warn("invitation mail not sent", "err", err)
		}
	}()
}
