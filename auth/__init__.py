"""City realms and access tokens: who is calling, decided by the token's issuer.

Every collection the realms use has one owning module: only it reads or writes the
collection, everyone else calls it. authlib's server core is synchronous and runs in a
worker thread on its own `MongoClient` (`OAuthStore.db`); where both that thread (or the CLI)
and the event loop need a collection, its owner has a sync and an async function over one
document format, and no operation exists twice.

    collection            owner                       used by
    oauth_clients         auth/oauth_store.py         sync: grants, endpoints, admin
    oauth_codes           auth/oauth_store.py         sync: code grant
    refresh_tokens        auth/oauth_store.py         sync: grants, endpoints, admin
    token_families        auth/oauth_store.py         sync: grants, endpoints
    consents              auth/oauth_store.py         sync: sign-in pages
    login_failures        auth/sign_in_store.py       sync: sign-in and invitation pages
    login_tickets         auth/sign_in_store.py       sync: sign-in pages
    realm_keys            auth/signing_keys.py        async: RealmRegistry, tokens;
                                                      sync: realm server, admin
    revocations           auth/revocations.py         async: Denylist;
                                                      sync: admin, grants, introspection
    trusted_issuers       auth/trusted_issuers.py     async: Federation; sync: admin
    federated_links       auth/federated_links.py     async: Federation; sync: admin
    people                services/store/people.py    sync: sign-in, realm server, admin
                                                      (credentials); async: services (profiles)
    cities                services/store/cities.py    async: services, realm pages,
                                                      RealmRegistry (slugs); sync: admin (name)

The realm server is split by part: auth/realm_server.py (one authlib server per realm),
auth/grants.py (code with PKCE, client credentials, rotating refresh), auth/endpoints.py
(revocation and introspection of a `PresentedToken`) and auth/oauth_requests.py; the HTTP
side is auth/web.py (routes), auth/sign_in.py and auth/oauth_realms.py.
"""
