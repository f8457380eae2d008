// AWS API actions called: secretsmanager:GetSecretValue on DB_SECRET_ARN (../shared/database)
// and on each consumer's secret (request.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { escapeIdentifier, escapeLiteral } from 'pg';
import { database } from '../shared/database';
import { logger } from '../shared/logger';
import { PHYSICAL_ID, parseRequest, passwordOf, removedRoles } from './request';
import { dropStatements, grantStatements, run } from './roles';

const quoting = { escapeIdentifier, escapeLiteral };

/**
 * The consumer roles on PostgreSQL (RDS for PostgreSQL, Aurora PostgreSQL), as a CloudFormation
 * custom resource (the CDK Provider framework calls this function and answers CloudFormation;
 * this one runs in the VPC, with no internet route). Create and Update make every role match
 * its secret and its table, and an Update drops the roles the old properties named and the
 * new ones do not (CloudFormation sends the previous properties as OldResourceProperties);
 * Delete drops them all. Run it outside an upgrade window: role changes on blue are not
 * replicated to green by logical replication. MySQL's: ../database-roles-mysql.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-postgres
 * https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.custom_resources-readme.html#provider-framework
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes-update.html
 */
export const handler = async (event: unknown): Promise<{ PhysicalResourceId: string }> => {
  const request = parseRequest(event);
  const props = request.ResourceProperties;
  const db = await database();
  if (request.RequestType === 'Delete') {
    await run(
      db,
      props.Roles.flatMap((r) => dropStatements(r.role, quoting)),
    );
    logger.info('consumer roles dropped', { roles: props.Roles.map((r) => r.role) });
    return { PhysicalResourceId: PHYSICAL_ID };
  }
  if (props.Schema === 'demo') {
    await db.query(readFileSync(join(__dirname, 'schema.sql'), 'utf8'));
  }
  for (const r of props.Roles) {
    const password = await passwordOf(r.secretArn, r.role);
    await run(db, grantStatements({ role: r.role, table: r.table, password }, quoting));
  }
  const gone = removedRoles(request);
  await run(
    db,
    gone.flatMap((r) => dropStatements(r, quoting)),
  );
  if (gone.length > 0) logger.info('consumer roles dropped', { roles: gone });
  logger.info('consumer roles set', { roles: props.Roles.map((r) => `${r.role} → ${r.table}`) });
  return { PhysicalResourceId: PHYSICAL_ID };
};
