/**
 * @mimi-discovery/relay — the parties between a sender's app and a resolver that learn no CSI:
 * the oblivious relay (Oblivious HTTP, RFC 9458; Oblivious DoH proxy, RFC 9230), which knows
 * the sender's address but forwards only encrypted requests, and the Privacy Pass issuer
 * (RFC 9576–9578), which knows the sender's account but signs only blinded token requests.
 */
export {};
