import { useRef, useState } from "preact/hooks";
import { errorsByField, gql, newMutationId, type UserError } from "../api";
import { nodes, type Connection } from "../data";
import { format, useTexts } from "../i18n";
import { ADD_COMMENT } from "../queries";

export type CommentData = {
  id: string;
  body: string | null;
  createdAt: string;
  deletedAt: string | null;
  hidden: boolean;
  author: { name: string } | null;
  city: { slug: string; name: string };
  replies?: Connection<CommentData>;
};

function CommentForm(props: {
  subjectId: string;
  parentId?: string;
  label: string;
  onDone: () => void;
  onCancel?: () => void;
}) {
  const { t } = useTexts();
  const [body, setBody] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = `comment-${props.parentId ?? "new"}`;
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const result = await gql<{ addComment: { userErrors: UserError[] } }>(ADD_COMMENT, {
        input: {
          subjectId: props.subjectId,
          parentId: props.parentId ?? null,
          body,
          clientMutationId: newMutationId(),
        },
      });
      const errors = result.addComment.userErrors;
      if (errors.length) {
        setError(errorsByField(errors).values().next().value ?? errors[0].message);
      } else {
        setBody("");
        props.onDone();
      }
    } catch (failure) {
      setError((failure as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="comment-form" onSubmit={submit}>
      <label for={id}>{props.label}</label>
      <textarea
        id={id}
        autoFocus={Boolean(props.parentId)} // a reply's form takes the focus as it opens
        required
        rows={3}
        value={body}
        aria-invalid={error ? "true" : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
        onInput={(event) => setBody(event.currentTarget.value)}
      />
      {error && (
        <p id={`${id}-error`} class="field-error">
          {error}
        </p>
      )}
      <div class="actions">
        <button type="submit" disabled={busy || !body.trim()}>
          {t.comments.send}
        </button>
        {props.onCancel && (
          <button type="button" class="secondary" onClick={props.onCancel}>
            {t.comments.cancel}
          </button>
        )}
      </div>
    </form>
  );
}

function OneComment(props: { comment: CommentData; subjectId: string; onChanged: () => void }) {
  const { t, language } = useTexts();
  const { comment } = props;
  const [replying, setReplying] = useState(false);
  const replyButton = useRef<HTMLButtonElement>(null);
  const closeReply = () => {
    setReplying(false);
    requestAnimationFrame(() => replyButton.current?.focus()); // back where it was
  };
  const text = comment.deletedAt
    ? t.comments.deleted
    : comment.hidden
      ? t.comments.hidden
      : comment.body;
  const name = comment.author?.name ?? comment.city.name;
  return (
    <li class="comment">
      <div class="muted">
        <strong>{name}</strong> · {comment.city.name} ·{" "}
        <time dateTime={comment.createdAt}>
          {new Date(comment.createdAt).toLocaleString(language, { dateStyle: "medium" })}
        </time>
      </div>
      <p class="comment-body">{text}</p>
      {comment.replies && (
        <>
          {nodes(comment.replies).length > 0 && (
            <ul class="replies">
              {nodes(comment.replies).map((reply) => (
                <OneComment
                  key={reply.id}
                  comment={reply}
                  subjectId={props.subjectId}
                  onChanged={props.onChanged}
                />
              ))}
            </ul>
          )}
          {replying ? (
            <CommentForm
              subjectId={props.subjectId}
              parentId={comment.id}
              label={format(t.comments.replyLabel, { name })}
              onDone={() => {
                closeReply();
                props.onChanged();
              }}
              onCancel={closeReply}
            />
          ) : (
            <button ref={replyButton} type="button" class="link" onClick={() => setReplying(true)}>
              {t.comments.reply}
            </button>
          )}
        </>
      )}
    </li>
  );
}

export function Comments(props: {
  subjectId: string;
  comments: Connection<CommentData>;
  onChanged: () => void;
}) {
  const { t } = useTexts();
  const list = nodes(props.comments);
  return (
    <section aria-labelledby="comments-heading">
      <h2 id="comments-heading">{t.comments.title}</h2>
      {list.length === 0 ? (
        <p class="muted">{t.comments.none}</p>
      ) : (
        <ul class="comments">
          {list.map((comment) => (
            <OneComment
              key={comment.id}
              comment={comment}
              subjectId={props.subjectId}
              onChanged={props.onChanged}
            />
          ))}
        </ul>
      )}
      <CommentForm subjectId={props.subjectId} label={t.comments.add} onDone={props.onChanged} />
    </section>
  );
}
