-- The platform tables the buffer consumers write to. The demo platform's stack creates them
-- (lambda/database-roles, before the consumer roles are granted on them); a real platform
-- owns and migrates its schema, and this file documents what the consumers expect. The tests
-- run against it.
-- Consumers never run DDL: DDL on blue during a blue/green deployment is not replicated and
-- degrades replication.
-- https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-postgres
--
-- Every table is keyed by the message's idempotency key, so a redelivered message inserts
-- nothing (and logical replication needs a primary key on every table anyway).

CREATE TABLE IF NOT EXISTS email_sends (
  idempotency_key text PRIMARY KEY,
  campaign_id text NOT NULL,
  recipient text NOT NULL,
  template_id text NOT NULL,
  scheduled_at timestamptz NOT NULL,
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS opt_in_confirmations (
  idempotency_key text PRIMARY KEY,
  list_id text NOT NULL,
  subscriber_id text NOT NULL, -- the platform's opaque id: links carry no address
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS sign_ups (
  idempotency_key text PRIMARY KEY,
  list_id text NOT NULL,
  email text NOT NULL,
  name text,
  fields jsonb NOT NULL DEFAULT '{}',
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS unsubscribes (
  idempotency_key text PRIMARY KEY,
  subscriber_id text NOT NULL,
  list_id text, -- NULL: every list
  campaign_id text,
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS tracking_events (
  idempotency_key text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('click', 'open')),
  campaign_id text NOT NULL,
  subscriber_id text NOT NULL,
  url text,
  user_agent text,
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
