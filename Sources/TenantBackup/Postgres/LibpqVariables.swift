/// libpq's connection keywords and the `PG*` environment variable that stands for each: the one table both
/// directions use (our own connections read the variables; pg_dump gets a connection string as variables).
enum LibpqVariables {
    static let all: [(keyword: String, variable: String)] = [
        ("host", "PGHOST"), ("hostaddr", "PGHOSTADDR"), ("port", "PGPORT"), ("dbname", "PGDATABASE"), ("user", "PGUSER"),
        ("password", "PGPASSWORD"), ("passfile", "PGPASSFILE"), ("service", "PGSERVICE"), ("options", "PGOPTIONS"),
        ("application_name", "PGAPPNAME"), ("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("sslcert", "PGSSLCERT"),
        ("sslkey", "PGSSLKEY"), ("sslcrl", "PGSSLCRL"), ("sslcompression", "PGSSLCOMPRESSION"), ("requirepeer", "PGREQUIREPEER"),
        ("krbsrvname", "PGKRBSRVNAME"), ("connect_timeout", "PGCONNECT_TIMEOUT"), ("target_session_attrs", "PGTARGETSESSIONATTRS"),
        ("gssencmode", "PGGSSENCMODE"), ("channel_binding", "PGCHANNELBINDING"),
    ]

    /// The variable for each keyword.
    static let variableForKeyword: [String: String] = Dictionary(uniqueKeysWithValues: all.map { ($0.keyword, $0.variable) })
}
