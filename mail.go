package gatehouse

// The emails Gatehouse sends: template names, rendered by
// internal/outbound/mail.
const (
	MailTemplateVerifyEmail   = "verify_email"
	MailTemplateResetPassword = "reset_password"
	MailTemplateWelcome       = "welcome"
	MailTemplateSecurityAlert = "security_alert"
	MailTemplateMagicLink     = "magic_link"
	// MailTemplateWebhookDisabled tells an owner their failing webhook was
	// turned off: Title is the webhook URL, Time when failures began.
	MailTemplateWebhookDisabled = "webhook_disabled"
	// MailTemplateNewDevice tells a user of a sign-in from a device new to the
	// account: Title is the device ("Firefox on Linux"), Details where,
	// Time and IP when and from where. With a Link (and ExpiresIn) it asks
	// the user to confirm a risky sign-in instead: the link completes it.
	MailTemplateNewDevice = "new_device"
	// MailTemplateChangeEmail asks the new address of an email change to
	// confirm it: Link (required) and ExpiresIn.
	MailTemplateChangeEmail = "change_email"
)

// The data keys templates read. Values arrive through JSON (the job's
// arguments), so they are plain strings, lists and numbers.
const (
	// MailKeyServiceName overrides the renderer's service name.
	MailKeyServiceName = "ServiceName"
	// MailKeyName is the recipient's display name; may be empty.
	MailKeyName = "Name"
	// MailKeyLink is an absolute http(s) URL built by the caller from the
	// public URL. Required by verify_email, reset_password and magic_link;
	// optional for welcome (a sign-in page) and security_alert (account
	// security page).
	MailKeyLink = "Link"
	// MailKeyExpiresIn is how long the link stays valid, as text ("24 hours").
	MailKeyExpiresIn = "ExpiresIn"
	// MailKeyTitle is the alert's one-line headline. Required by security_alert.
	MailKeyTitle = "Title"
	// MailKeyDetails is the alert's detail lines: a list of strings (or one
	// string, split at line breaks).
	MailKeyDetails = "Details"
	// MailKeyTime is when the alerted event happened: a time.Time or an RFC 3339
	// string (what a time.Time becomes in JSON); shown in UTC.
	MailKeyTime = "Time"
	// MailKeyIP is the client IP address of the alerted event.
	MailKeyIP = "IP"
)
