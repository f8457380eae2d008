import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface NotificationTopicProps {
  /**
   * Who is emailed. The address must confirm the subscription once.
   * @default - no subscription
   */
  readonly email?: string;
}

/**
 * The SNS topic for upgrade notifications and alarms: encrypted with its own KMS key and
 * reachable over TLS only.
 */
export class NotificationTopic extends Construct {
  readonly topic: sns.Topic;
  readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: NotificationTopicProps = {}) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: 'Encrypts upgrade notifications and alarms',
      enableKeyRotation: true,
      pendingWindow: Duration.days(30),
    });
    // CloudWatch alarms publish to an encrypted topic only if the key lets the service use it.
    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
    // (scroll to "Amazon SNS topic with server-side encryption")
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'], // in a key policy, "*" means this key
      }),
    );
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: 'Database upgrade',
      masterKey: this.key,
      enforceSSL: true,
    });
    if (props.email !== undefined && props.email !== '') {
      this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));
    }
  }
}
