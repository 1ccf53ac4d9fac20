package delivery

import "encoding/json"

// Content is the stored MessageContent (IO's field names), as the gateway
// writes it in messages.content.
type Content struct {
	Subject               string       `json:"subject"`
	Markdown              string       `json:"markdown"`
	DueDate               string       `json:"due_date,omitempty"`
	RequireSecureChannels bool         `json:"require_secure_channels,omitempty"`
	PaymentData           *PaymentData `json:"payment_data,omitempty"`
}

// PaymentData is a pagoPA payment notice attached to a message.
type PaymentData struct {
	Amount              int64  `json:"amount"`
	NoticeNumber        string `json:"notice_number"`
	InvalidAfterDueDate bool   `json:"invalid_after_due_date,omitempty"`
	Payee               *Payee `json:"payee,omitempty"`
}

// Payee is the institution that receives a payment.
type Payee struct {
	FiscalCode string `json:"fiscal_code"`
}

// ParseContent decodes messages.content; nil or empty (deleted by
// retention) gives nil.
func ParseContent(raw *string) (*Content, error) {
	if raw == nil || *raw == "" {
		return nil, nil
	}
	var c Content
	if err := json.Unmarshal([]byte(*raw), &c); err != nil {
		return nil, err
	}
	return &c, nil
}
