-- schema.sql for MySQL (RDS for MySQL, Aurora MySQL; MariaDB in the tests): the platform
-- tables the buffer consumers write to, column for column, with MySQL's types. As there, a
-- real platform owns and migrates its schema, this file documents what the consumers
-- expect, and the tests run against it. Consumers never run DDL.
-- https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html
--
-- Where the types differ from PostgreSQL, and why:
-- * idempotency_key is VARBINARY, compared byte for byte. In a text column the collation
--   decides what is equal: a case-insensitive one takes 'Key' for 'key', and a PAD SPACE one
--   (utf8mb4_bin among them) takes 'key ' for 'key', so a different message would be dropped
--   as a duplicate. 512 bytes hold the contract's 128 characters in UTF-8.
--   https://dev.mysql.com/doc/refman/8.0/en/binary-varbinary.html
--   https://dev.mysql.com/doc/refman/8.0/en/charset-binary-collations.html
-- * Text has the contract's maximum length (lambda/shared/contracts.ts): a longer value is an
--   error in strict mode, which the consumers set for their sessions, not a silent cut.
--   https://dev.mysql.com/doc/refman/8.0/en/sql-mode.html#sql-mode-strict
-- * Times are DATETIME(6) in UTC (MySQL keeps no offset): the consumers convert each time to
--   UTC and set their session's time_zone to UTC, which the recorded_at default uses.
--   https://dev.mysql.com/doc/refman/8.0/en/datetime.html
-- * A JSON column takes a default only as an expression.
--   https://dev.mysql.com/doc/refman/8.0/en/data-type-defaults.html
--
-- Every table's only unique key is its primary key, the idempotency key. The consumers'
-- INSERT … ON DUPLICATE KEY UPDATE takes a conflict on *any* unique key for a duplicate, so
-- another unique key would make a message that conflicts only on it vanish as one.
-- https://dev.mysql.com/doc/refman/8.0/en/insert-on-duplicate.html

CREATE TABLE IF NOT EXISTS email_sends (
  idempotency_key VARBINARY(512) NOT NULL PRIMARY KEY,
  campaign_id VARCHAR(128) NOT NULL,
  recipient VARCHAR(254) NOT NULL,
  template_id VARCHAR(128) NOT NULL,
  scheduled_at DATETIME(6) NOT NULL,
  occurred_at DATETIME(6) NOT NULL,
  recorded_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS opt_in_confirmations (
  idempotency_key VARBINARY(512) NOT NULL PRIMARY KEY,
  list_id VARCHAR(128) NOT NULL,
  subscriber_id VARCHAR(128) NOT NULL, -- the platform's opaque id: links carry no address
  occurred_at DATETIME(6) NOT NULL,
  recorded_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS sign_ups (
  idempotency_key VARBINARY(512) NOT NULL PRIMARY KEY,
  list_id VARCHAR(128) NOT NULL,
  email VARCHAR(254) NOT NULL,
  name VARCHAR(200),
  fields JSON NOT NULL DEFAULT ('{}'),
  occurred_at DATETIME(6) NOT NULL,
  recorded_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS unsubscribes (
  idempotency_key VARBINARY(512) NOT NULL PRIMARY KEY,
  subscriber_id VARCHAR(128) NOT NULL,
  list_id VARCHAR(128), -- NULL: every list
  campaign_id VARCHAR(128),
  occurred_at DATETIME(6) NOT NULL,
  recorded_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS tracking_events (
  idempotency_key VARBINARY(512) NOT NULL PRIMARY KEY,
  kind VARCHAR(5) NOT NULL CHECK (kind IN ('click', 'open')),
  campaign_id VARCHAR(128) NOT NULL,
  subscriber_id VARCHAR(128) NOT NULL,
  url VARCHAR(2048),
  user_agent VARCHAR(512),
  occurred_at DATETIME(6) NOT NULL,
  recorded_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
