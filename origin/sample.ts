/** The sample zone `propagate origin --sample` loads: one RRset of every supported type, TTL 60. */
export const SAMPLE_ZONE = "example.test";

export const SAMPLE_ZONE_FILE = `$ORIGIN example.test.
$TTL 60
@       IN SOA   ns1 hostmaster (
                 1       ; serial
                 3600    ; refresh
                 600     ; retry
                 604800  ; expire
                 60 )    ; minimum: negative answers are cached 60 s (RFC 2308)
@       IN NS    ns1
@       IN MX    10 mail
@       IN TXT   "v=spf1 -all"
@       IN CAA   0 issue "letsencrypt.org"
ns1     IN A     192.0.2.53
www     IN A     192.0.2.10
www     IN AAAA  2001:db8::10
mail    IN A     192.0.2.25
web     IN CNAME www
_http._tcp IN SRV 10 5 80 www
10      IN PTR   www.example.test.
`;
