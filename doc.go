// Package gatehouse holds the domain of the Gatehouse authentication server:
// its entities, value objects, the Error type with stable codes, and the
// catalogue of event types. It imports only the standard library, so every
// other package can depend on it and it depends on none of them.
package gatehouse
