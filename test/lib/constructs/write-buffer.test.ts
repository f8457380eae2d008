import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { WriteBuffer, type WriteBufferProps } from '../../../lib/constructs/write-buffer';

function build(overrides: Partial<WriteBufferProps>) {
  const stack = new Stack();
  stack.node.setContext('aws:cdk:bundling-stacks', []);
  const vpc = new ec2.Vpc(stack, 'Vpc');
  return new WriteBuffer(stack, 'Buffer', {
    bufferName: 'sends',
    vpc,
    vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
    securityGroups: [],
    databaseSecret: new secretsmanager.Secret(stack, 'Secret'),
    ...overrides,
  });
}

describe('WriteBuffer', () => {
  it.each([3, 4.5])('fails when maxReceiveCount is %p', (maxReceiveCount) => {
    expect(() => build({ maxReceiveCount })).toThrow(
      `maxReceiveCount must be a whole number 5-1000, got: ${maxReceiveCount}`,
    );
  });

  it.each([1, 2000])('fails when maxConcurrency is %p', (maxConcurrency) => {
    expect(() => build({ maxConcurrency })).toThrow(
      `maxConcurrency must be a whole number 2-1000, got: ${maxConcurrency}`,
    );
  });
});
