use sea_orm_migration::prelude::*;

use crate::util::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("users_users"))
                    .col(id("id"))
                    // Stored lower-cased, so the unique index is case-insensitive everywhere.
                    .col(string("email", 254))
                    .col(flag("email_verified"))
                    .col(string_null("password_hash", 255))
                    .col(string("name", 200))
                    .col(string_null("phone", 40))
                    .col(string("roles", 100))
                    .col(flag("disabled"))
                    .col(timestamp("created_at"))
                    .col(timestamp("updated_at"))
                    .col(timestamp_null("deleted_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("users_users", "idx_users_email", &["email"], true))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("users_addresses"))
                    .col(id("id"))
                    .col(string("user_id", 36))
                    .col(string("kind", 16))
                    .col(string("name", 200))
                    .col(string("line1", 200))
                    .col(string("line2", 200))
                    .col(string("city", 100))
                    .col(string("postal_code", 20))
                    .col(string("region", 100))
                    .col(string("country", 2))
                    .col(string_null("phone", 40))
                    .col(flag("is_default"))
                    .col(timestamp("created_at"))
                    .foreign_key(&mut fk(
                        "fk_users_addresses_user",
                        ("users_addresses", "user_id"),
                        ("users_users", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "users_addresses",
                "idx_users_addresses_user",
                &["user_id"],
                false,
            ))
            .await?;

        // Refresh tokens: one row per issued token, only its hash stored. A family is one
        // login; rotating adds a row and marks the old one rotated.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("users_sessions"))
                    .col(id("id"))
                    .col(string("family_id", 36))
                    .col(string("user_id", 36))
                    .col(string("token_hash", 64))
                    .col(timestamp("created_at"))
                    .col(timestamp("expires_at"))
                    .col(timestamp_null("rotated_at"))
                    .col(timestamp_null("revoked_at"))
                    .foreign_key(&mut fk(
                        "fk_users_sessions_user",
                        ("users_sessions", "user_id"),
                        ("users_users", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "users_sessions",
                "idx_users_sessions_hash",
                &["token_hash"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "users_sessions",
                "idx_users_sessions_family",
                &["family_id"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "users_sessions",
                "idx_users_sessions_user",
                &["user_id"],
                false,
            ))
            .await?;

        // E-mail verification and password reset tokens, stored as hashes.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("users_one_time_tokens"))
                    .col(
                        ColumnDef::new(Alias::new("token_hash"))
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(string("user_id", 36))
                    .col(string("purpose", 16))
                    .col(timestamp("created_at"))
                    .col(timestamp("expires_at"))
                    .col(timestamp_null("used_at"))
                    .foreign_key(&mut fk(
                        "fk_users_one_time_tokens_user",
                        ("users_one_time_tokens", "user_id"),
                        ("users_users", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "users_one_time_tokens",
                "idx_users_one_time_tokens_user",
                &["user_id", "purpose"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("users_signing_keys"))
                    .col(
                        ColumnDef::new(Alias::new("kid"))
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(text("secret"))
                    .col(timestamp("created_at"))
                    .col(timestamp_null("retired_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alias::new("users_identities"))
                    .col(id("id"))
                    .col(string("user_id", 36))
                    .col(string("provider", 64))
                    .col(string("subject", 255))
                    .col(string_null("email", 254))
                    .col(timestamp("created_at"))
                    .foreign_key(&mut fk(
                        "fk_users_identities_user",
                        ("users_identities", "user_id"),
                        ("users_users", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "users_identities",
                "idx_users_identities_subject",
                &["provider", "subject"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "users_identities",
                "idx_users_identities_user",
                &["user_id"],
                false,
            ))
            .await?;

        // A started OpenID Connect login: what the callback must match and prove.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("users_oidc_logins"))
                    .col(
                        ColumnDef::new(Alias::new("state"))
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(string("provider", 64))
                    .col(string("nonce", 64))
                    .col(string("pkce_verifier", 128))
                    .col(text("redirect_uri"))
                    .col(string_null("link_user_id", 36))
                    .col(timestamp("created_at"))
                    .col(timestamp("expires_at"))
                    .to_owned(),
            )
            .await?;

        // Outgoing e-mail, until the notifications subgraph sends it.
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("users_mail"))
                    .col(auto_id("id"))
                    .col(string("to_address", 254))
                    .col(string("subject", 200))
                    .col(text("body"))
                    .col(timestamp("created_at"))
                    .col(timestamp_null("sent_at"))
                    .to_owned(),
            )
            .await?;

        manager.create_table(outbox("users_outbox")).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(
            manager,
            &[
                "users_outbox",
                "users_mail",
                "users_oidc_logins",
                "users_identities",
                "users_signing_keys",
                "users_one_time_tokens",
                "users_sessions",
                "users_addresses",
                "users_users",
            ],
        )
        .await
    }
}
