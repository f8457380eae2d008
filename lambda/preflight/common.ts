// AWS API actions this file calls (for least-privilege IAM): rds:DescribeDBInstances.
import { type DBInstance, DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';

/**
 * One check's outcome. A check may find several problems (each its own sentence). A check
 * that cannot run because another failed is `skipped`: listed in `checks` as not ok, but not
 * repeated in `failures`, so the operator reads the cause once.
 */
export interface Outcome {
  name: string;
  problems: string[];
  passed: string;
  skipped?: string;
}

export const pass = (name: string, passed: string): Outcome => ({ name, problems: [], passed });
export const fail = (name: string, ...problems: string[]): Outcome => ({
  name,
  problems,
  passed: '',
});
export const skip = (name: string, why: string): Outcome => ({
  name,
  problems: [],
  passed: '',
  skipped: `not checked: ${why}`,
});

/** The SDK names a modelled error by its class; an unmodelled one by its wire code. */
export function isError(err: unknown, ...names: string[]): boolean {
  return err instanceof Error && names.includes(err.name);
}

/** The DB instance (identifier or ARN), or undefined when RDS does not know it. */
export async function describeInstance(
  rds: RDSClient,
  id: string,
): Promise<DBInstance | undefined> {
  try {
    const out = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
    return out.DBInstances?.[0];
  } catch (err) {
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html#API_DescribeDBInstances_Errors
    if (isError(err, 'DBInstanceNotFoundFault', 'DBInstanceNotFound')) return undefined;
    throw err;
  }
}
