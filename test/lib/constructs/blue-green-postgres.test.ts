import { Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import {
  BlueGreenPostgres,
  replicationParameters,
} from '../../../lib/constructs/blue-green-postgres';

describe('replicationParameters', () => {
  it('sizes slots, senders and workers from the number of databases', () => {
    expect(replicationParameters(1)).toEqual({
      'rds.force_ssl': '1',
      'rds.logical_replication': '1',
      max_replication_slots: '6',
      max_wal_senders: '6',
      max_logical_replication_workers: '6',
      autovacuum_max_workers: '3',
      max_parallel_workers: '8',
      max_worker_processes: '17',
    });
    const many = replicationParameters(40);
    expect(Number(many.max_replication_slots)).toBeGreaterThan(40);
    expect(Number(many.max_worker_processes)).toBe(45 + 3 + 8);
  });
});

describe('BlueGreenPostgres', () => {
  it.each([0, -1, 2.5, 1000])('fails on databaseCount %p', (databaseCount) => {
    const stack = new Stack();
    const vpc = new ec2.Vpc(stack, 'Vpc');
    expect(
      () =>
        new BlueGreenPostgres(stack, 'Db', {
          vpc,
          vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
          engineVersion: '16.6',
          instanceIdentifier: 'db',
          instanceType: new ec2.InstanceType('t4g.medium'),
          allocatedStorageGiB: 20,
          backupRetention: Duration.days(1),
          preferredMaintenanceWindow: 'sun:04:00-sun:05:00',
          multiAz: false,
          databaseCount,
        }),
    ).toThrow(`databaseCount must be a whole number 1-100, got: ${databaseCount}`);
  });
});
